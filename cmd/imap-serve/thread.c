/* postroom: ISC license, see LICENSE. */
/*
 * THREAD and UID THREAD (RFC 5256): ORDEREDSUBJECT, and REFERENCES as its section 3 gives it
 * step by step (the id table, pruning empty containers, grouping by base subject, siblings by
 * sent date). The keys come from sort.c, from postroom-cache when warm. The tree is walked
 * with stacks of our own, not recursion: a chain of replies is as deep as the folder is long.
 */
#include <stdlib.h>
#include <string.h>

#include "sort.h"

struct node {
	int entry;		/* into the messages, or -1: a dummy */
	int parent, child, last, next;
};

struct tree {
	struct node *n;
	size_t count, cap;
	struct sort_keys *k;	/* by entry */
	size_t *idx;		/* by entry: the message's index in the view */
	int root, root_last;	/* the list of roots */
};

static int new_node(struct tree *t, int entry)
{
	if (t->count == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct node *n = realloc(t->n, cap * sizeof *n);
		if (!n)
			return -1;
		t->n = n;
		t->cap = cap;
	}
	t->n[t->count] = (struct node){ entry, -1, -1, -1, -1 };
	return (int)t->count++;
}

/* --- the id table: msg-id to container -------------------------------------------------- */

struct idtable {
	const char **key;
	int *node;
	size_t size;		/* a power of two */
	size_t used;
};

static size_t hash(const char *s)
{
	size_t h = 5381;
	while (*s)
		h = h * 33 + (unsigned char)*s++;
	return h;
}

static int id_grow(struct idtable *it)
{
	size_t size = it->size ? it->size * 2 : 1024;
	const char **key = calloc(size, sizeof *key);
	int *node = malloc(size * sizeof *node);
	if (!key || !node) {
		free(key);
		free(node);
		return 0;
	}
	for (size_t i = 0; i < it->size; i++) {
		if (!it->key[i])
			continue;
		size_t h = hash(it->key[i]) & (size - 1);
		while (key[h])
			h = (h + 1) & (size - 1);
		key[h] = it->key[i];
		node[h] = it->node[i];
	}
	free(it->key);
	free(it->node);
	it->key = key;
	it->node = node;
	it->size = size;
	return 1;
}

/* The container of id, made (as a dummy) when there is none: -1 when out of memory. */
static int id_find(struct idtable *it, struct tree *t, const char *id, int *created)
{
	*created = 0;
	if (it->used * 2 >= it->size && !id_grow(it))
		return -1;
	size_t h = hash(id) & (it->size - 1);
	while (it->key[h]) {
		if (!strcmp(it->key[h], id))
			return it->node[h];
		h = (h + 1) & (it->size - 1);
	}
	int n = new_node(t, -1);
	if (n < 0)
		return -1;
	it->key[h] = id;
	it->node[h] = n;
	it->used++;
	*created = 1;
	return n;
}

/* --- links ---------------------------------------------------------------------------------- */

static void unlink_child(struct tree *t, int c)
{
	int p = t->n[c].parent;
	if (p < 0)
		return;
	int prev = -1;
	for (int x = t->n[p].child; x >= 0; prev = x, x = t->n[x].next)
		if (x == c) {
			if (prev < 0)
				t->n[p].child = t->n[c].next;
			else
				t->n[prev].next = t->n[c].next;
			if (t->n[p].last == c)
				t->n[p].last = prev;
			break;
		}
	t->n[c].parent = t->n[c].next = -1;
}

static void append_child(struct tree *t, int p, int c)
{
	t->n[c].parent = p;
	t->n[c].next = -1;
	if (t->n[p].last >= 0)
		t->n[t->n[p].last].next = c;
	else
		t->n[p].child = c;
	t->n[p].last = c;
}

/* 1 when p is c or below c: making c p's child would close a loop. */
static int is_under(const struct tree *t, int p, int c)
{
	for (; p >= 0; p = t->n[p].parent)
		if (p == c)
			return 1;
	return 0;
}

/* --- REFERENCES ------------------------------------------------------------------------------ */

/* Step 1: the containers and their links from each message's ids. */
static int link_messages(struct tree *t, size_t n)
{
	struct idtable it = { 0 };
	int created, ok = 1;

	for (size_t e = 0; e < n && ok; e++) {
		const struct sort_keys *k = &t->k[e];
		int c = -1;
		/* A message with no Message-ID, or the later ones of a duplicate, gets a unique
		   id: a container of its own, not in the table. */
		if (*k->msgid) {
			c = id_find(&it, t, k->msgid, &created);
			if (c < 0) {
				ok = 0;
				break;
			}
			if (t->n[c].entry >= 0)
				c = -1;
		}
		if (c < 0 && (c = new_node(t, -1)) < 0) {
			ok = 0;
			break;
		}
		t->n[c].entry = (int)e;
		/* (A) the references, each the parent of the next, links that exist kept */
		int prev = -1;
		const char *r = k->refs;
		while (*r && ok) {
			size_t len = strcspn(r, " ");
			/* ids live in k's strings: cut the one we look at into place */
			const char *id = r;
			char *sp = (char *)r + len;
			int had_space = *sp == ' ';
			*sp = 0;
			int x = id_find(&it, t, id, &created);
			if (x < 0) {
				ok = 0;
				break;
			}
			if (prev >= 0 && t->n[x].parent < 0 && !is_under(t, prev, x))
				append_child(t, prev, x);
			prev = x;
			r = had_space ? sp + 1 : sp;
		}
		/* (B) the last reference is the parent, whatever was linked before */
		unlink_child(t, c);
		if (prev >= 0 && !is_under(t, prev, c))
			append_child(t, prev, c);
	}
	free(it.key);
	free(it.node);
	return ok;
}

/* The date a node sorts by: its message's, or its first child's for a dummy. */
static time_t node_date(const struct tree *t, int x, size_t *seq)
{
	while (t->n[x].entry < 0 && t->n[x].child >= 0)
		x = t->n[x].child;
	int e = t->n[x].entry;
	*seq = e >= 0 ? t->idx[e] : 0;
	return e >= 0 ? t->k[e].sent : 0;
}

static const struct tree *sorting;

static int by_date(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	size_t sx, sy;
	time_t dx = node_date(sorting, x, &sx), dy = node_date(sorting, y, &sy);
	if (dx != dy)
		return dx < dy ? -1 : 1;
	return sx < sy ? -1 : sx > sy;
}

/* Sorts the list starting at *head (of parent p, or the roots for -1) by date. */
static int sort_list(struct tree *t, int p, int *head, int *last, int *buf)
{
	size_t m = 0;
	for (int x = *head; x >= 0; x = t->n[x].next)
		buf[m++] = x;
	if (m < 2)
		return 1;
	sorting = t;
	qsort(buf, m, sizeof *buf, by_date);
	*head = buf[0];
	for (size_t i = 0; i < m; i++) {
		t->n[buf[i]].next = i + 1 < m ? buf[i + 1] : -1;
		t->n[buf[i]].parent = p;
	}
	*last = buf[m - 1];
	return 1;
}

/* Every node under the roots, parents before their children. */
static size_t preorder(const struct tree *t, int *out, int *stack)
{
	size_t n = 0, sp = 0;
	for (int r = t->root; r >= 0; r = t->n[r].next)
		stack[sp++] = r;
	while (sp) {
		int x = stack[--sp];
		out[n++] = x;
		for (int c = t->n[x].child; c >= 0; c = t->n[c].next)
			stack[sp++] = c;
	}
	return n;
}

/* Step 4 for one list: dummies without children go; those with children give them to the
   list, but among the roots only when there is one child. */
static void prune_list(struct tree *t, int p, int *head, int *last)
{
	int prev = -1;
	for (int x = *head; x >= 0;) {
		int next = t->n[x].next;
		if (t->n[x].entry >= 0 || (p < 0 && t->n[x].child >= 0 &&
					   t->n[t->n[x].child].next >= 0)) {
			prev = x;
			x = next;
			continue;
		}
		/* x goes; its children, if any, take its place */
		int first = t->n[x].child, end = t->n[x].last;
		for (int c = first; c >= 0; c = t->n[c].next)
			t->n[c].parent = p;
		if (first >= 0) {
			t->n[end].next = next;
			if (prev < 0)
				*head = first;
			else
				t->n[prev].next = first;
			prev = end;
		} else if (prev < 0) {
			*head = next;
		} else {
			t->n[prev].next = next;
		}
		if (next < 0)
			*last = prev;
		t->n[x].child = t->n[x].last = -1;
		/* the promoted children were pruned already: go on after them */
		x = next;
	}
	if (*head < 0)
		*last = -1;
}

/* The thread's subject (step 5.B.i): its message's, or its first child's for a dummy. */
static const struct sort_keys *thread_keys(const struct tree *t, int x)
{
	if (t->n[x].entry < 0)
		x = t->n[x].child;
	return x >= 0 && t->n[x].entry >= 0 ? &t->k[t->n[x].entry] : 0;
}

static size_t subject_hash(const char *s)
{
	size_t h = 5381;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		h = h * 33 + (c >= 'a' && c <= 'z' ? c - ('a' - 'A') : c);
	}
	return h;
}

/* Step 5: threads of one base subject gathered. The table maps a subject to a root. */
static int group_subjects(struct tree *t, size_t roots)
{
	size_t size = 64;
	while (size < roots * 2 + 2)
		size *= 2;
	int *slot = malloc(size * sizeof *slot);
	if (!slot)
		return 0;
	for (size_t i = 0; i < size; i++)
		slot[i] = -1;
	/* (B) one root per subject, dummies and non-replies preferred */
	for (int x = t->root; x >= 0; x = t->n[x].next) {
		const struct sort_keys *k = thread_keys(t, x);
		if (!k || !*k->subject)
			continue;
		size_t h = subject_hash(k->subject) & (size - 1);
		while (slot[h] >= 0 && sort_casecmp(thread_keys(t, slot[h])->subject, k->subject))
			h = (h + 1) & (size - 1);
		if (slot[h] < 0) {
			slot[h] = x;
			continue;
		}
		int y = slot[h];
		const struct node *ny = &t->n[y], *nx = &t->n[x];
		if (ny->entry >= 0 &&
		    (nx->entry < 0 || (t->k[ny->entry].reply && !t->k[nx->entry].reply)))
			slot[h] = x;
	}
	/* (C) the others merged into it */
	int prev = -1;
	for (int x = t->root; x >= 0;) {
		int next = t->n[x].next;
		const struct sort_keys *k = thread_keys(t, x);
		size_t h = 0;
		if (k && *k->subject) {
			h = subject_hash(k->subject) & (size - 1);
			while (sort_casecmp(thread_keys(t, slot[h])->subject, k->subject))
				h = (h + 1) & (size - 1);
		}
		int y = k && *k->subject ? slot[h] : x;
		if (y == x) {
			prev = x;
			x = next;
			continue;
		}
		/* x leaves the roots */
		if (prev < 0)
			t->root = next;
		else
			t->n[prev].next = next;
		if (next < 0)
			t->root_last = prev;
		t->n[x].next = -1;
		int xd = t->n[x].entry < 0, yd = t->n[y].entry < 0;
		if (xd && yd) {
			for (int c = t->n[x].child; c >= 0;) {
				int cn = t->n[c].next;
				append_child(t, y, c);
				c = cn;
			}
		} else if (yd || (!xd && t->k[t->n[x].entry].reply &&
				  !t->k[t->n[y].entry].reply)) {
			append_child(t, y, x);
		} else {
			/* a dummy over both, in y's place among the roots */
			int d = new_node(t, -1);
			if (d < 0) {
				free(slot);
				return 0;
			}
			int before = -1;
			for (int r = t->root; r >= 0 && r != y; r = t->n[r].next)
				before = r;
			t->n[d].next = t->n[y].next;
			if (before < 0)
				t->root = d;
			else
				t->n[before].next = d;
			if (t->root_last == y)
				t->root_last = d;
			if (prev == y)
				prev = d;
			t->n[y].next = -1;
			append_child(t, d, y);
			append_child(t, d, x);
			slot[h] = d;
		}
		x = next;
	}
	free(slot);
	return 1;
}

static int thread_references(struct tree *t, size_t n)
{
	if (!link_messages(t, n))
		return 0;
	/* (2) the roots: containers with no parent */
	t->root = t->root_last = -1;
	for (size_t i = 0; i < t->count; i++)
		if (t->n[i].parent < 0) {
			if (t->root_last >= 0)
				t->n[t->root_last].next = (int)i;
			else
				t->root = (int)i;
			t->n[i].next = -1;
			t->root_last = (int)i;
		}
	/* room for the dummies step 5 may add: one per root at most */
	size_t roots = 0;
	for (int r = t->root; r >= 0; r = t->n[r].next)
		roots++;
	int *order = malloc((t->count + roots + 1) * sizeof *order);
	int *stack = malloc((t->count + roots + 1) * sizeof *stack);
	int ok = order && stack;
	if (ok) {
		/* (4) children before parents, the roots last */
		size_t m = preorder(t, order, stack);
		for (size_t i = m; i-- > 0;)
			prune_list(t, order[i], &t->n[order[i]].child, &t->n[order[i]].last);
		prune_list(t, -1, &t->root, &t->root_last);
		roots = 0;
		for (int r = t->root; r >= 0; r = t->n[r].next)
			roots++;
		ok = group_subjects(t, roots);
	}
	if (ok) {
		/* (6) siblings by date, the deepest first */
		size_t m = preorder(t, order, stack);
		for (size_t i = m; i-- > 0 && ok;)
			ok = sort_list(t, order[i], &t->n[order[i]].child, &t->n[order[i]].last,
				       stack);
		ok = ok && sort_list(t, -1, &t->root, &t->root_last, stack);
	}
	free(order);
	free(stack);
	return ok;
}

/* --- ORDEREDSUBJECT ------------------------------------------------------------------------- */

static const struct tree *ordering;

static int by_subject_date(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	const struct sort_keys *kx = &ordering->k[x], *ky = &ordering->k[y];
	int r = sort_casecmp(kx->subject, ky->subject);
	if (r)
		return r;
	if (kx->sent != ky->sent)
		return kx->sent < ky->sent ? -1 : 1;
	return ordering->idx[x] < ordering->idx[y] ? -1 : ordering->idx[x] > ordering->idx[y];
}

/* Sorted by base subject and date; each run of one subject is a thread, its first message
   the parent of the others; the threads by their first message's date. */
static int thread_orderedsubject(struct tree *t, size_t n)
{
	int *e = malloc((n + 1) * sizeof *e);
	if (!e)
		return 0;
	for (size_t i = 0; i < n; i++)
		e[i] = (int)i;
	ordering = t;
	qsort(e, n, sizeof *e, by_subject_date);
	t->root = t->root_last = -1;
	int top = -1, ok = 1;
	for (size_t i = 0; i < n && ok; i++) {
		int x = new_node(t, e[i]);
		if (x < 0) {
			ok = 0;
			break;
		}
		if (top >= 0 && !sort_casecmp(t->k[t->n[top].entry].subject, t->k[e[i]].subject)) {
			append_child(t, top, x);
			continue;
		}
		top = x;
		if (t->root_last >= 0)
			t->n[t->root_last].next = x;
		else
			t->root = x;
		t->root_last = x;
	}
	free(e);
	int *buf = ok ? malloc((t->count + 1) * sizeof *buf) : 0;
	ok = buf && sort_list(t, -1, &t->root, &t->root_last, buf);
	free(buf);
	return ok;
}

/* --- the answer ------------------------------------------------------------------------------ */

enum step { OPEN, NODE, CLOSE };
struct action {
	enum step step;
	int node;
};

/* "(a b (c)(d e))": a message, then its one child after a space, or each of its children in
   parentheses; a dummy shows only its children, each in parentheses. */
static int out_tree(struct session *s, const struct tree *t, int uid)
{
	struct action *stack = malloc((3 * t->count + 3) * sizeof *stack);
	size_t sp = 0;
	int after_number = 0;

	if (!stack)
		return 0;
	for (int r = t->root; r >= 0; r = t->n[r].next) {
		stack[sp++] = (struct action){ CLOSE, -1 };
		stack[sp++] = (struct action){ NODE, r };
		stack[sp++] = (struct action){ OPEN, -1 };
		while (sp) {
			struct action a = stack[--sp];
			if (a.step == OPEN) {
				out(&s->c, after_number ? " (" : "(");
				after_number = 0;
				continue;
			}
			if (a.step == CLOSE) {
				out(&s->c, ")");
				after_number = 0;
				continue;
			}
			const struct node *nd = &t->n[a.node];
			if (nd->entry >= 0) {
				size_t idx = t->idx[nd->entry];
				out(&s->c, after_number ? " %u" : "%u",
				    uid ? s->box.msg[idx].uid : (unsigned)(idx + 1));
				after_number = 1;
				if (nd->child >= 0 && t->n[nd->child].next < 0) {
					stack[sp++] = (struct action){ NODE, nd->child };
					continue;
				}
			}
			/* each child in parentheses, pushed so that the first comes out first */
			size_t m = 0;
			for (int c = nd->child; c >= 0; c = t->n[c].next)
				m++;
			sp += 3 * m;
			size_t at = sp;
			for (int c = nd->child; c >= 0; c = t->n[c].next) {
				stack[--at] = (struct action){ OPEN, -1 };
				stack[--at] = (struct action){ NODE, c };
				stack[--at] = (struct action){ CLOSE, -1 };
			}
		}
	}
	free(stack);
	return 1;
}

void cmd_thread(struct session *s, int uid, size_t arg)
{
	const struct imap_cmd *cmd = &s->c.cmd;
	const char *tag = conn_tag(&s->c);
	int references;
	struct tree t = { 0 };
	size_t n = 0;

	if (imap_tok_is(cmd, arg, "REFERENCES"))
		references = 1;
	else if (imap_tok_is(cmd, arg, "ORDEREDSUBJECT"))
		references = 0;
	else {
		bad(&s->c, s->cf, "THREAD needs REFERENCES or ORDEREDSUBJECT");
		return;
	}
	if (arg + 2 >= cmd->ntok) {
		bad(&s->c, s->cf, "THREAD needs an algorithm, a charset and search keys");
		return;
	}
	if (!search_charset(s, arg + 1))
		return;
	unsigned char *match = calloc(s->box.count + 1, 1);
	t.k = calloc(s->box.count + 1, sizeof *t.k);
	t.idx = malloc((s->box.count + 1) * sizeof *t.idx);
	if (!match || !t.k || !t.idx) {
		out(&s->c, "%s NO [SERVERBUG] Out of memory\r\n", tag);
		goto done;
	}
	if (!search_keys(s, arg + 2, match))
		goto done;
	for (size_t i = 0; i < s->box.count; i++)
		if (match[i]) {
			t.idx[n] = i;
			sort_keys_get(s, i, &t.k[n++]);
		}
	if (!(references ? thread_references(&t, n) : thread_orderedsubject(&t, n))) {
		out(&s->c, "%s NO [SERVERBUG] Out of memory\r\n", tag);
		goto done;
	}
	out(&s->c, "* THREAD ");
	out_tree(s, &t, uid);
	out(&s->c, "\r\n");
	announce_changes(s, uid);
	out(&s->c, "%s OK Thread completed\r\n", tag);
done:
	for (size_t i = 0; i < n; i++)
		sort_keys_free(&t.k[i]);
	free(match);
	free(t.k);
	free(t.idx);
	free(t.n);
}
