# postroom: ISC license, see LICENSE.
# One source per line; each program names its own objects and libraries.

CC ?= cc
CFLAGS ?= -O2 -g
STD_CFLAGS = -std=c17 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Ilib
# libmysqlclient (MariaDB Connector/C): its headers for lib/sql.c, its library for the programs
# that talk to MySQL.
MYSQL_CFLAGS := $(shell mysql_config --cflags 2>/dev/null)
MYSQL_LIBS := $(shell mysql_config --libs 2>/dev/null)
SAN_CFLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all

# BUILD holds objects, BIN the programs; the sanitizer build uses build/asan and build/asan/bin.
BUILD ?= build/normal
BIN ?= bin
# The programs that run as one process per idle IMAP or POP3 session link glibc statically,
# without PIE: no dynamic loader's pages and no relocated data of libc's to copy in each
# process, about 50 KiB of each session's memory (imap-serve(8), Memory; INSTALL says what it
# costs). Empty for the sanitizer build, which cannot be static.
STATIC_LDFLAGS = -static -no-pie

LIB_SRCS = \
	lib/addr.c \
	lib/base64.c \
	lib/buf.c \
	lib/checkpw.c \
	lib/deadline.c \
	lib/deflate_io.c \
	lib/die.c \
	lib/dns.c \
	lib/dns_mx.c \
	lib/dns_record.c \
	lib/dsn.c \
	lib/dsn_param.c \
	lib/env.c \
	lib/fmt.c \
	lib/getln.c \
	lib/imap_cmd.c \
	lib/imap_subject.c \
	lib/inject.c \
	lib/log.c \
	lib/mailbox.c \
	lib/mailbox_cache.c \
	lib/mailbox_folders.c \
	lib/mailbox_guid.c \
	lib/mailbox_modseq.c \
	lib/mailbox_uidlist.c \
	lib/maildir.c \
	lib/maildir_quota.c \
	lib/memory.c \
	lib/mime.c \
	lib/mime_binary.c \
	lib/mime_imap.c \
	lib/mime_preview.c \
	lib/mime_text.c \
	lib/mime_thread.c \
	lib/mutf7.c \
	lib/password.c \
	lib/pool.c \
	lib/queue_admin.c \
	lib/queue_read.c \
	lib/queue_write.c \
	lib/resolve.c \
	lib/sa.c \
	lib/sasl.c \
	lib/smtp_client.c \
	lib/smtp_data.c \
	lib/smtp_deliver.c \
	lib/smtp_options.c \
	lib/sql.c \
	lib/sync.c \
	lib/tcprules.c \
	lib/temp.c \
	lib/tls_client.c \
	lib/ucspitls.c \
	lib/userdb.c \
	lib/userdb_build.c \
	lib/userdb_sql.c \
	lib/userdb_text.c \
	lib/utf8.c

PROGS = \
	checkpassword-mysql \
	imap-serve \
	maildir-deliver \
	mx-lookup \
	pop3-serve \
	queue-flush \
	queue-hold \
	queue-init \
	queue-inject \
	queue-list \
	queue-release \
	queue-remove \
	queue-run \
	smtp-recv \
	smtp-send \
	tls-server \
	tls-wrap \
	userdb-admin \
	userdb-compile \
	userdb-lookup

checkpassword-mysql_OBJS = cmd/checkpassword-mysql/main.o
checkpassword-mysql_LIBS = -lcdb $(MYSQL_LIBS) -lcrypt
imap-serve_OBJS = \
	cmd/imap-serve/main.o \
	cmd/imap-serve/append.o \
	cmd/imap-serve/binary.o \
	cmd/imap-serve/compress.o \
	cmd/imap-serve/conn.o \
	cmd/imap-serve/condstore.o \
	cmd/imap-serve/folder.o \
	cmd/imap-serve/login.o \
	cmd/imap-serve/messages.o \
	cmd/imap-serve/objectid.o \
	cmd/imap-serve/rev2.o \
	cmd/imap-serve/search.o \
	cmd/imap-serve/session.o \
	cmd/imap-serve/sort.o \
	cmd/imap-serve/thread.o \
	cmd/imap-serve/utf8_accept.o
imap-serve_LDFLAGS = $(STATIC_LDFLAGS)
imap-serve_LIBS = -lz
maildir-deliver_OBJS = cmd/maildir-deliver/main.o
mx-lookup_OBJS = cmd/mx-lookup/main.o
mx-lookup_LIBS = -lresolv
pop3-serve_OBJS = \
	cmd/pop3-serve/main.o \
	cmd/pop3-serve/conn.o \
	cmd/pop3-serve/login.o \
	cmd/pop3-serve/session.o
pop3-serve_LDFLAGS = $(STATIC_LDFLAGS)
queue-flush_OBJS = cmd/queue-flush/main.o
queue-hold_OBJS = cmd/queue-hold/main.o
queue-init_OBJS = cmd/queue-init/main.o
queue-inject_OBJS = cmd/queue-inject/main.o
queue-list_OBJS = cmd/queue-list/main.o
queue-release_OBJS = cmd/queue-release/main.o
queue-remove_OBJS = cmd/queue-remove/main.o
queue-run_OBJS = \
	cmd/queue-run/main.o \
	cmd/queue-run/deliver.o \
	cmd/queue-run/notify.o \
	cmd/queue-run/remote.o \
	cmd/queue-run/schedule.o \
	cmd/queue-run/worker.o
queue-run_LIBS = -lcdb -lssl -lcrypto -lresolv
smtp-recv_OBJS = \
	cmd/smtp-recv/main.o \
	cmd/smtp-recv/auth.o \
	cmd/smtp-recv/data.o \
	cmd/smtp-recv/session.o
smtp-recv_LIBS = -lcdb
smtp-send_OBJS = cmd/smtp-send/main.o
smtp-send_LIBS = -lssl -lcrypto -lresolv
tls-server_OBJS = \
	cmd/tls-server/main.o \
	cmd/tls-server/master.o \
	cmd/tls-server/shared.o \
	cmd/tls-server/worker.o \
	cmd/tls-wrap/keys.o \
	cmd/tls-wrap/privilege.o \
	cmd/tls-wrap/relay.o \
	cmd/tls-wrap/serve.o
tls-server_LIBS = -lssl -lcrypto -lcdb
tls-wrap_OBJS = \
	cmd/tls-wrap/main.o \
	cmd/tls-wrap/keys.o \
	cmd/tls-wrap/privilege.o \
	cmd/tls-wrap/relay.o \
	cmd/tls-wrap/serve.o
tls-wrap_LIBS = -lssl -lcrypto
userdb-admin_OBJS = cmd/userdb-admin/main.o
userdb-admin_LIBS = -lcdb $(MYSQL_LIBS) -lcrypt
userdb-compile_OBJS = \
	cmd/userdb-compile/main.o \
	cmd/userdb-compile/sync.o
userdb-compile_LIBS = -lcdb $(MYSQL_LIBS)
userdb-lookup_OBJS = cmd/userdb-lookup/main.o
userdb-lookup_LIBS = -lcdb

LIB_OBJS = $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIBA = $(BUILD)/libpostroom.a

PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: all asan check deps install clean run stop tools
all: $(PROGS:%=$(BIN)/%)

# Programs only the tests use: crashfs, the FUSE file system of the crash tests.
TOOLS = tests/tools/crashfs
tools: $(TOOLS)
tests/tools/crashfs: tests/tools/crashfs.c
	$(CC) $(STD_CFLAGS) $$(pkg-config --cflags fuse3) $(CFLAGS) -o $@ $< $$(pkg-config --libs fuse3)

$(BUILD)/%.o: %.c $(wildcard lib/*.h) $(wildcard cmd/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(STD_CFLAGS) $(MYSQL_CFLAGS) $(CFLAGS) -c -o $@ $<

$(LIBA): $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $(LIB_OBJS)

.SECONDARY:
.SECONDEXPANSION:
$(BIN)/%: $$(addprefix $(BUILD)/,$$($$*_OBJS)) $(LIBA)
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS) $(LDFLAGS) $($*_LDFLAGS) -o $@ $(filter %.o,$^) $(LIBA) $($*_LIBS)

asan:
	$(MAKE) BUILD=build/asan BIN=build/asan/bin CFLAGS="$(SAN_CFLAGS)" LDFLAGS="-fsanitize=address,undefined" \
		STATIC_LDFLAGS= all

# Fuzzing (tests/fuzz/): a libFuzzer harness per parser, built with clang into build/fuzz/bin.
# make fuzz runs each for FUZZ_SECONDS on its seeds (tests/fuzz/corpus/NAME), keeping what it
# learns in build/fuzz/corpus/NAME and any crash in tests/fuzz/crashes/NAME. Without clang the
# harnesses are linked with tests/fuzz/replay.c under ASan+UBSan: they only replay files, which
# is all tests/fuzz-replay.bats (make check) asks of them.
FUZZ_HARNESSES = addr imap_cmd mime queue_read smtp_cmd smtp_data userdb_text
FUZZ_SECONDS ?= 600
FUZZ_CLANG := $(shell command -v clang 2>/dev/null)
.PHONY: fuzz fuzz-bin
ifneq ($(FUZZ_CLANG),)
FUZZ_MAKE = CC=clang CFLAGS="$(SAN_CFLAGS) -fsanitize=fuzzer-no-link" FUZZ_LINK=-fsanitize=fuzzer
else
FUZZ_MAKE = CFLAGS="$(SAN_CFLAGS)" FUZZ_LINK="-fsanitize=address,undefined tests/fuzz/replay.c"
endif
fuzz-bin:
	$(MAKE) BUILD=build/fuzz $(FUZZ_MAKE) $(FUZZ_HARNESSES:%=build/fuzz/bin/%)
build/fuzz/bin/%: tests/fuzz/%.c tests/fuzz/replay.c $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(STD_CFLAGS) $(CFLAGS) -o $@ $< $(FUZZ_LINK) $(LIBA) -lcdb
fuzz: fuzz-bin
	@[ -n "$(FUZZ_CLANG)" ] || { echo "make fuzz: needs clang (libFuzzer)"; exit 1; }
	@failed=; for h in $(FUZZ_HARNESSES); do \
		mkdir -p build/fuzz/corpus/$$h tests/fuzz/crashes/$$h; \
		echo "make fuzz: $$h for $(FUZZ_SECONDS) s"; \
		build/fuzz/bin/$$h -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			-artifact_prefix=tests/fuzz/crashes/$$h/ $$(test -f tests/fuzz/$$h.dict && \
			echo -dict=tests/fuzz/$$h.dict) build/fuzz/corpus/$$h tests/fuzz/corpus/$$h \
			|| failed="$$failed $$h"; \
	done; [ -z "$$failed" ] || { echo "make fuzz: crashes in$$failed (tests/fuzz/crashes/)"; exit 1; }

# Debian 12 packages the project needs at build, test and run time.
DEB_PACKAGES = build-essential pkg-config libcdb-dev libssl-dev default-libmysqlclient-dev \
	libcrypt-dev zlib1g-dev s6 ucspi-tcp bats bats-assert bats-support mandoc mariadb-server swaks \
	libnet-ssleay-perl openssl dnsmasq isync python3 util-linux procps \
	dovecot-core dovecot-imapd iproute2 mutt time tmux fetchmail getmail6 offlineimap3 \
	libfuse3-dev fuse3 clang

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "make deps: installing" $$missing; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# The builds on every core: make check must stay well inside CI's 20 minutes.
check: deps
	$(MAKE) -j$$(nproc) all
	$(MAKE) -j$$(nproc) asan
	$(MAKE) tools
	@tests/check

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man5 \
		$(DESTDIR)$(PREFIX)/share/man/man7 $(DESTDIR)$(PREFIX)/share/man/man8
	install -m 755 $(PROGS:%=$(BIN)/%) $(DESTDIR)$(PREFIX)/bin
	install -m 644 man/*.5 $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 644 man/*.7 $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 644 man/*.8 $(DESTDIR)$(PREFIX)/share/man/man8

# make run: the whole system on loopback under s6, with the demo users (etc/postroom-run).
RUNTIME ?= $(CURDIR)/run
SMTP_PORT ?= 2525
SUBMISSION_PORT ?= 2587
SMTPS_PORT ?= 2465
IMAP_PORT ?= 2143
IMAPS_PORT ?= 2993
POP3_PORT ?= 2110
POP3S_PORT ?= 2995
SMARTHOST ?=
SMARTHOST_AUTH ?=
run: deps all
	@RUNTIME=$(RUNTIME) BIN=$(CURDIR)/$(BIN) SMTP_PORT=$(SMTP_PORT) \
		SUBMISSION_PORT=$(SUBMISSION_PORT) SMTPS_PORT=$(SMTPS_PORT) \
		IMAP_PORT=$(IMAP_PORT) IMAPS_PORT=$(IMAPS_PORT) \
		POP3_PORT=$(POP3_PORT) POP3S_PORT=$(POP3S_PORT) \
		SMARTHOST=$(SMARTHOST) SMARTHOST_AUTH=$(SMARTHOST_AUTH) etc/postroom-run start

stop:
	@RUNTIME=$(RUNTIME) etc/postroom-run stop

clean:
	rm -rf build $(PROGS:%=$(BIN)/%) $(TOOLS)
