/*
 * The TAP steering program (netback/steer.h). Written out instruction by
 * instruction with a small assembler below: no BPF compiler or library is
 * needed at build or run time (docs/netback.md says why).
 *
 * Registers: r6 the frame (LD_ABS/LD_IND read from it), r7 the map value,
 * r8 the hash, r9 the IPv4 header length; r0-r5 scratch (LD_ABS clobbers
 * them).
 */
#include "netback/steer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <linux/if_tun.h>

struct steer_val {
	uint32_t flags, size, nqueues, pad;
	uint32_t mapping[NB_HASH_MAPPING_MAX];
	uint32_t table[NB_HASH_INPUT_MAX][256];
};

#define OFF_FLAGS 0
#define OFF_SIZE 4
#define OFF_NQUEUES 8
#define OFF_MAPPING 16
#define OFF_TABLE (16 + 4 * NB_HASH_MAPPING_MAX)
_Static_assert(offsetof(struct steer_val, table) == OFF_TABLE, "layout");

/* ---- a small assembler ------------------------------------------------------ */

enum { L_V4, L_V4L3, L_V6, L_V6L3, L_SELECT, L_MOD, L_NOVAL, L_COUNT };
#define MAX_INSNS 1024

struct as {
	struct bpf_insn in[MAX_INSNS];
	unsigned n;
	int label[L_COUNT];
	struct { unsigned at; int label; } fix[64];
	unsigned nfix;
	bool overflow;
};

static void emit(struct as *a, uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
	if (a->n == MAX_INSNS) {
		a->overflow = true;
		return;
	}
	a->in[a->n++] = (struct bpf_insn){ .code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm };
}

/* A jump to a label placed later: `op` against the constant `imm` (BPF_K)
 * or the register `src` (BPF_X); BPF_JA jumps always. */
static void jump(struct as *a, uint8_t op, uint8_t kind, uint8_t dst, uint8_t src, int32_t imm, int label)
{
	if (a->nfix == sizeof(a->fix) / sizeof(a->fix[0])) {
		a->overflow = true;
		return;
	}
	a->fix[a->nfix].at = a->n;
	a->fix[a->nfix++].label = label;
	emit(a, BPF_JMP | op | kind, dst, src, 0, imm);
}

static void jmp(struct as *a, uint8_t op, uint8_t dst, int32_t imm, int label)
{
	jump(a, op, BPF_K, dst, 0, imm, label);
}

static void jmp_reg(struct as *a, uint8_t op, uint8_t dst, uint8_t src, int label)
{
	jump(a, op, BPF_X, dst, src, 0, label);
}

static void place(struct as *a, int label) { a->label[label] = (int)a->n; }

static void alu(struct as *a, uint8_t op, uint8_t dst, int32_t imm)
{
	emit(a, BPF_ALU64 | op | BPF_K, dst, 0, 0, imm);
}

static void mov_reg(struct as *a, uint8_t dst, uint8_t src)
{
	emit(a, BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0);
}

static void ldx_w(struct as *a, uint8_t dst, uint8_t src, int16_t off)
{
	emit(a, BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0);
}

/* Jump to `label` if the frame is shorter than `min` bytes (r1 = its length;
 * LD_ABS reads past the end would end the program with queue 0 instead of
 * the hash-0 choice nb_hash_frame makes). */
static void if_shorter(struct as *a, int32_t min, int label)
{
	ldx_w(a, BPF_REG_1, BPF_REG_6, (int16_t)offsetof(struct __sk_buff, len));
	jmp(a, BPF_JLT, BPF_REG_1, min, label);
}

/* r0 = the frame's byte at `off` (+ r9 when ind); unsigned, in host order. */
static void ld_byte(struct as *a, int32_t off, bool ind)
{
	emit(a, BPF_LD | (ind ? BPF_IND : BPF_ABS) | BPF_B, 0, ind ? BPF_REG_9 : 0, 0, off);
}

/* hash ^= table[pos][byte at off (+ r9)]. */
static void hash_byte(struct as *a, unsigned pos, int32_t off, bool ind)
{
	ld_byte(a, off, ind);
	alu(a, BPF_AND, BPF_REG_0, 0xff);
	alu(a, BPF_LSH, BPF_REG_0, 2);
	emit(a, BPF_ALU64 | BPF_ADD | BPF_X, BPF_REG_0, BPF_REG_7, 0, 0);
	alu(a, BPF_ADD, BPF_REG_0, (int32_t)(OFF_TABLE + pos * 1024u));
	ldx_w(a, BPF_REG_0, BPF_REG_0, 0);
	emit(a, BPF_ALU64 | BPF_XOR | BPF_X, BPF_REG_8, BPF_REG_0, 0, 0);
}

static void hash_bytes(struct as *a, unsigned pos, int32_t off, unsigned n, bool ind)
{
	for (unsigned i = 0; i < n; i++)
		hash_byte(a, pos + i, off + (int32_t)i, ind);
}

/* Jump to `label` unless the enabled types include `type`. */
static void unless_type(struct as *a, uint32_t type, int label)
{
	ldx_w(a, BPF_REG_1, BPF_REG_7, OFF_FLAGS);
	alu(a, BPF_AND, BPF_REG_1, (int32_t)type);
	jmp(a, BPF_JEQ, BPF_REG_1, 0, label);
}

/* r0 = the element of `map_fd` whose key is at r10 + key_off, or NOVAL. */
static void lookup(struct as *a, int map_fd, int16_t key_off)
{
	mov_reg(a, BPF_REG_2, BPF_REG_10);
	alu(a, BPF_ADD, BPF_REG_2, key_off);
	emit(a, BPF_LD | BPF_DW | BPF_IMM, BPF_REG_1, BPF_PSEUDO_MAP_FD, 0, map_fd);
	emit(a, 0, 0, 0, 0, 0);
	emit(a, BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem);
	jmp(a, BPF_JEQ, BPF_REG_0, 0, L_NOVAL);
}

static void assemble(struct as *a, int map_fd, int sel_fd)
{
	/* r7 = the value in force: slot *sel of the two (the other one is
	 * rewritten, then sel flipped: a frame never sees half a table). */
	mov_reg(a, BPF_REG_6, BPF_REG_1);
	alu(a, BPF_MOV, BPF_REG_8, 0);
	emit(a, BPF_ST | BPF_MEM | BPF_W, BPF_REG_10, 0, -4, 0);
	lookup(a, sel_fd, -4);
	ldx_w(a, BPF_REG_1, BPF_REG_0, 0);
	alu(a, BPF_AND, BPF_REG_1, 1);
	emit(a, BPF_STX | BPF_MEM | BPF_W, BPF_REG_10, BPF_REG_1, -8, 0);
	lookup(a, map_fd, -8);
	mov_reg(a, BPF_REG_7, BPF_REG_0);

	if_shorter(a, 14, L_SELECT);
	emit(a, BPF_LD | BPF_ABS | BPF_H, 0, 0, 0, 12);
	jmp(a, BPF_JEQ, BPF_REG_0, 0x0800, L_V4);
	jmp(a, BPF_JEQ, BPF_REG_0, 0x86DD, L_V6);
	jmp(a, BPF_JA, 0, 0, L_SELECT);

	/* IPv4: version 4, header length >= 20 (r9 = its bytes). */
	place(a, L_V4);
	if_shorter(a, 14 + 20, L_SELECT);
	ld_byte(a, 14, false);
	mov_reg(a, BPF_REG_9, BPF_REG_0);
	alu(a, BPF_RSH, BPF_REG_9, 4);
	jmp(a, BPF_JNE, BPF_REG_9, 4, L_SELECT);
	alu(a, BPF_AND, BPF_REG_0, 15);
	jmp(a, BPF_JLT, BPF_REG_0, 5, L_SELECT);
	alu(a, BPF_LSH, BPF_REG_0, 2);
	mov_reg(a, BPF_REG_9, BPF_REG_0);
	unless_type(a, XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP, L_V4L3);
	ld_byte(a, 23, false);
	jmp(a, BPF_JNE, BPF_REG_0, 6, L_V4L3);
	emit(a, BPF_LD | BPF_ABS | BPF_H, 0, 0, 0, 20);
	alu(a, BPF_AND, BPF_REG_0, 0x3fff);
	jmp(a, BPF_JNE, BPF_REG_0, 0, L_V4L3);
	/* The ports present: header + 18 <= length. */
	ldx_w(a, BPF_REG_2, BPF_REG_6, (int16_t)offsetof(struct __sk_buff, len));
	mov_reg(a, BPF_REG_1, BPF_REG_9);
	alu(a, BPF_ADD, BPF_REG_1, 14 + 4);
	jmp_reg(a, BPF_JGT, BPF_REG_1, BPF_REG_2, L_V4L3);
	hash_bytes(a, 0, 26, 8, false);
	hash_bytes(a, 8, 14, 4, true);
	jmp(a, BPF_JA, 0, 0, L_SELECT);
	place(a, L_V4L3);
	unless_type(a, XEN_NETIF_CTRL_HASH_TYPE_IPV4, L_SELECT);
	hash_bytes(a, 0, 26, 8, false);
	jmp(a, BPF_JA, 0, 0, L_SELECT);

	/* IPv6: version 6; TCP only as the next header. */
	place(a, L_V6);
	if_shorter(a, 14 + 40, L_SELECT);
	ld_byte(a, 14, false);
	alu(a, BPF_RSH, BPF_REG_0, 4);
	jmp(a, BPF_JNE, BPF_REG_0, 6, L_SELECT);
	unless_type(a, XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP, L_V6L3);
	ld_byte(a, 20, false);
	jmp(a, BPF_JNE, BPF_REG_0, 6, L_V6L3);
	if_shorter(a, 14 + 44, L_V6L3);
	hash_bytes(a, 0, 22, 36, false);
	jmp(a, BPF_JA, 0, 0, L_SELECT);
	place(a, L_V6L3);
	unless_type(a, XEN_NETIF_CTRL_HASH_TYPE_IPV6, L_SELECT);
	hash_bytes(a, 0, 22, 32, false);

	/* mapping[hash % size] (the index masked for the verifier: size <=
	 * 128), or hash % queues. */
	place(a, L_SELECT);
	ldx_w(a, BPF_REG_1, BPF_REG_7, OFF_SIZE);
	jmp(a, BPF_JEQ, BPF_REG_1, 0, L_MOD);
	emit(a, BPF_ALU | BPF_MOV | BPF_X, BPF_REG_0, BPF_REG_8, 0, 0);
	emit(a, BPF_ALU | BPF_MOD | BPF_X, BPF_REG_0, BPF_REG_1, 0, 0);
	alu(a, BPF_AND, BPF_REG_0, NB_HASH_MAPPING_MAX - 1);
	alu(a, BPF_LSH, BPF_REG_0, 2);
	emit(a, BPF_ALU64 | BPF_ADD | BPF_X, BPF_REG_0, BPF_REG_7, 0, 0);
	ldx_w(a, BPF_REG_0, BPF_REG_0, OFF_MAPPING);
	emit(a, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
	place(a, L_MOD);
	ldx_w(a, BPF_REG_1, BPF_REG_7, OFF_NQUEUES);
	emit(a, BPF_ALU | BPF_MOV | BPF_X, BPF_REG_0, BPF_REG_8, 0, 0);
	emit(a, BPF_ALU | BPF_MOD | BPF_X, BPF_REG_0, BPF_REG_1, 0, 0);
	emit(a, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
	place(a, L_NOVAL);
	alu(a, BPF_MOV, BPF_REG_0, 0);
	emit(a, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);

	for (unsigned i = 0; i < a->nfix; i++)
		a->in[a->fix[i].at].off = (int16_t)(a->label[a->fix[i].label] - (int)a->fix[i].at - 1);
}

/* ---- the program and its map ------------------------------------------------- */

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	return (int)syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

/* Load the assembled program; on failure, again with the verifier's log,
 * whose last line says why. */
static int load(struct as *a, char *err, size_t errlen)
{
	union bpf_attr attr;
	char *log = NULL;
	int fd, r;

	for (int pass = 0; pass < 2; pass++) {
		memset(&attr, 0, sizeof(attr));
		attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
		attr.insns = (uint64_t)(uintptr_t)a->in;
		attr.insn_cnt = a->n;
		attr.license = (uint64_t)(uintptr_t)"Dual MIT/GPL";
		if (pass == 1 && (log = calloc(1, 1u << 20))) {
			attr.log_buf = (uint64_t)(uintptr_t)log;
			attr.log_size = 1u << 20;
			attr.log_level = 1;
		}
		fd = sys_bpf(BPF_PROG_LOAD, &attr);
		if (fd >= 0 || pass == 1)
			break;
		r = -errno;
		if (r == -EPERM)   /* no log will say more */
			break;
	}
	if (fd >= 0) {
		free(log);
		return fd;
	}
	r = -errno;
	{
		char *last = log ? log : "", *nl;

		for (nl = log ? strchr(log, '\n') : NULL; nl && nl[1]; nl = strchr(nl + 1, '\n'))
			if (nl[1] != '\n')
				last = nl + 1;
		snprintf(err, errlen, "cannot load the steering program: %s%s%.200s", strerror(-r),
			 last[0] ? ": " : "", last);
	}
	free(log);
	return r;
}

static int make_map(uint32_t value_size, uint32_t entries)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.map_type = BPF_MAP_TYPE_ARRAY;
	attr.key_size = sizeof(uint32_t);
	attr.value_size = value_size;
	attr.max_entries = entries;
	return sys_bpf(BPF_MAP_CREATE, &attr);
}

static int map_put(int fd, uint32_t key, const void *value)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.map_fd = (uint32_t)fd;
	attr.key = (uint64_t)(uintptr_t)&key;
	attr.value = (uint64_t)(uintptr_t)value;
	attr.flags = BPF_ANY;
	return sys_bpf(BPF_MAP_UPDATE_ELEM, &attr) < 0 ? -errno : 0;
}

int nb_steer_open(struct nb_steer *s, char *err, size_t errlen)
{
	struct as *a = calloc(1, sizeof(*a));
	int r;

	s->prog_fd = s->map_fd = s->sel_fd = -1;
	if (!a) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->map_fd = make_map(sizeof(struct steer_val), 2);
	s->sel_fd = s->map_fd < 0 ? -1 : make_map(sizeof(uint32_t), 1);
	if (s->map_fd < 0 || s->sel_fd < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot create the steering maps: %s", strerror(errno));
		free(a);
		nb_steer_close(s);
		return r;
	}
	s->cur = 0;
	assemble(a, s->map_fd, s->sel_fd);
	if (a->overflow) {
		snprintf(err, errlen, "the steering program does not fit %u instructions", MAX_INSNS);
		r = -E2BIG;
	} else {
		r = load(a, err, errlen);
	}
	free(a);
	if (r < 0) {
		nb_steer_close(s);
		return r;
	}
	s->prog_fd = r;
	return 0;
}

int nb_steer_update(struct nb_steer *s, const struct nb_hash *h)
{
	struct steer_val *v = calloc(1, sizeof(*v));
	uint32_t next = s->cur ^ 1u;
	int r;

	if (!v)
		return -ENOMEM;
	v->flags = h->flags;
	v->size = h->size;
	v->nqueues = h->nqueues;
	memcpy(v->mapping, h->mapping, sizeof(v->mapping));
	nb_hash_table(h->key, v->table);
	/* The slot not in force, then the switch (one 4-byte word). */
	r = map_put(s->map_fd, next, v);
	if (r == 0)
		r = map_put(s->sel_fd, 0, &next);
	if (r == 0)
		s->cur = next;
	free(v);
	return r;
}

int nb_steer_attach(struct nb_steer *s, int tap_fd)
{
	int fd = s->prog_fd;

	return ioctl(tap_fd, TUNSETSTEERINGEBPF, &fd) < 0 ? -errno : 0;
}

int nb_steer_detach(int tap_fd)
{
	int fd = -1;

	return ioctl(tap_fd, TUNSETSTEERINGEBPF, &fd) < 0 ? -errno : 0;
}

void nb_steer_close(struct nb_steer *s)
{
	if (s->prog_fd >= 0)
		close(s->prog_fd);
	if (s->map_fd >= 0)
		close(s->map_fd);
	if (s->sel_fd >= 0)
		close(s->sel_fd);
	s->prog_fd = s->map_fd = s->sel_fd = -1;
}
