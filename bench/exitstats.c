/* postroom: ISC license, see LICENSE.
 * bench/exitstats: one line per task that exits anywhere on the machine, from the kernel's
 * taskstats (genetlink, TASKSTATS_CMD_ATTR_REGISTER_CPUMASK), until killed:
 *   pid=P ppid=Q comm=NAME cpu_ns=N utime_us=U stime_us=S minflt=F majflt=M vcsw=V ivcsw=I etime_us=E
 * cpu_ns is the scheduler's own sum of the task's run time (cpu_run_real_total, filled when
 * kernel.task_delayacct is 1), exact where utime/stime are sampled at the tick. It is how
 * bench/connection-cost sees what the short-lived processes of a connection cost: they are
 * gone before /proc could be read. */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/taskstats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NLA_DATA(na) ((void *)((char *)(na) + NLA_HDRLEN))

static int nl;
static unsigned seq;

static void die(const char *what)
{
	fprintf(stderr, "exitstats: fatal: %s: %s\n", what, strerror(errno));
	exit(111);
}

static void send_cmd(__u16 type, __u8 cmd, __u16 attr, const void *data, int len)
{
	struct {
		struct nlmsghdr n;
		struct genlmsghdr g;
		char buf[256];
	} m;
	struct sockaddr_nl to = { .nl_family = AF_NETLINK };

	memset(&m, 0, sizeof m);
	m.n.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	m.n.nlmsg_type = type;
	m.n.nlmsg_flags = NLM_F_REQUEST;
	m.n.nlmsg_seq = ++seq;
	m.n.nlmsg_pid = (__u32)getpid();
	m.g.cmd = cmd;
	m.g.version = 1;
	struct nlattr *na = (struct nlattr *)((char *)&m + NLMSG_ALIGN(m.n.nlmsg_len));
	na->nla_type = attr;
	na->nla_len = (__u16)(NLA_HDRLEN + len);
	memcpy(NLA_DATA(na), data, (size_t)len);
	m.n.nlmsg_len += NLA_ALIGN(na->nla_len);
	if (sendto(nl, &m, m.n.nlmsg_len, 0, (struct sockaddr *)&to, sizeof to) < 0)
		die("sendto");
}

static __u16 family_id(void)
{
	char buf[4096];
	send_cmd(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, CTRL_ATTR_FAMILY_NAME, TASKSTATS_GENL_NAME,
		 sizeof TASKSTATS_GENL_NAME);
	ssize_t r = recv(nl, buf, sizeof buf, 0);
	if (r < 0)
		die("recv");
	struct nlmsghdr *n = (struct nlmsghdr *)buf;
	if (n->nlmsg_type == NLMSG_ERROR || !NLMSG_OK(n, (unsigned)r))
		return errno = ENOENT, die("no TASKSTATS family"), 0;
	struct nlattr *na = (struct nlattr *)((char *)NLMSG_DATA(n) + GENL_HDRLEN);
	int len = (int)(n->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN));
	while (len > 0) {
		if (na->nla_type == CTRL_ATTR_FAMILY_ID)
			return *(__u16 *)NLA_DATA(na);
		len -= NLA_ALIGN(na->nla_len);
		na = (struct nlattr *)((char *)na + NLA_ALIGN(na->nla_len));
	}
	return errno = ENOENT, die("no family id"), 0;
}

static void print(const struct taskstats *t)
{
	printf("pid=%u ppid=%u comm=%.*s cpu_ns=%llu utime_us=%llu stime_us=%llu minflt=%llu "
	       "majflt=%llu vcsw=%llu ivcsw=%llu etime_us=%llu\n",
	       t->ac_pid, t->ac_ppid, (int)strnlen(t->ac_comm, TS_COMM_LEN), t->ac_comm,
	       (unsigned long long)t->cpu_run_real_total, (unsigned long long)t->ac_utime,
	       (unsigned long long)t->ac_stime, (unsigned long long)t->ac_minflt,
	       (unsigned long long)t->ac_majflt, (unsigned long long)t->nvcsw,
	       (unsigned long long)t->nivcsw, (unsigned long long)t->ac_etime);
	fflush(stdout);
}

int main(void)
{
	static char buf[1 << 16];
	char mask[32];
	int rcv = 8 << 20;
	struct sockaddr_nl me = { .nl_family = AF_NETLINK };

	nl = socket(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC);
	if (nl < 0)
		die("socket");
	setsockopt(nl, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv);
	if (bind(nl, (struct sockaddr *)&me, sizeof me) < 0)
		die("bind");
	__u16 id = family_id();
	snprintf(mask, sizeof mask, "0-%ld", sysconf(_SC_NPROCESSORS_CONF) - 1);
	send_cmd(id, TASKSTATS_CMD_GET, TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, mask,
		 (int)strlen(mask) + 1);
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		ssize_t r = recv(nl, buf, sizeof buf, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {	/* records lost: say so, the totals are short */
				printf("lost\n");
				fflush(stdout);
				continue;
			}
			die("recv");
		}
		for (struct nlmsghdr *n = (struct nlmsghdr *)buf; NLMSG_OK(n, (unsigned)r);
		     n = NLMSG_NEXT(n, r)) {
			if (n->nlmsg_type != id)
				continue;
			struct nlattr *na = (struct nlattr *)((char *)NLMSG_DATA(n) + GENL_HDRLEN);
			int len = (int)(n->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN));
			while (len > 0) {
				if (na->nla_type == TASKSTATS_TYPE_AGGR_PID) {
					struct nlattr *in = NLA_DATA(na);
					int l = na->nla_len - NLA_HDRLEN;
					while (l > 0) {
						if (in->nla_type == TASKSTATS_TYPE_STATS)
							print(NLA_DATA(in));
						l -= NLA_ALIGN(in->nla_len);
						in = (struct nlattr *)((char *)in + NLA_ALIGN(in->nla_len));
					}
				}
				len -= NLA_ALIGN(na->nla_len);
				na = (struct nlattr *)((char *)na + NLA_ALIGN(na->nla_len));
			}
		}
	}
}
