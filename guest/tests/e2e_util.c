#include "guest/tests/e2e_util.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/if_packet.h>
#include <net/if.h>

#include "common/util.h"
#include "guest/tests/testback.h"

#ifndef GOLDEN_DIR
#define GOLDEN_DIR "guest/tests/golden"
#endif

int e2e_pass, e2e_fail;

static char tmpdir[128];
#define E2E_MAX 64   /* namespaces, guests per test program */
static char netns[E2E_MAX][16];
static unsigned nnetns;
static struct mts_host *hosts[8];
static unsigned nhosts;
static struct mts_guest *guests[E2E_MAX];
static unsigned nguests;

static void cleanup(void)
{
	while (nguests)
		mts_guest_stop(guests[--nguests]);
	while (nhosts)
		mts_host_stop(hosts[--nhosts]);
	while (nnetns) {
		const char *n = netns[--nnetns];
		int r = e2e_sh("ip netns pids %s | xargs -r kill -9; ip netns del %s", n, n);
		if (r != 0)
			fprintf(stderr, "cleanup: deleting netns %s: status %d\n", n, r);
	}
	if (tmpdir[0] && !getenv("PVNET_KEEP_TMP"))
		e2e_sh("rm -rf %s", tmpdir);
}

static void on_signal(int sig)
{
	(void)sig;
	exit(130);
}

void e2e_require(void)
{
	char p[512];
	const char *b = getenv("PVNET_BUILD");

	if (geteuid() != 0 || access("/dev/net/tun", R_OK | W_OK) != 0) {
		printf("SKIP: needs root and /dev/net/tun\n");
		exit(77);
	}
	snprintf(p, sizeof(p), "%s/pvnet-guest", b ? b : "build");
	if (access(p, X_OK) != 0) {
		printf("SKIP: %s not built\n", p);
		exit(77);
	}
	atexit(cleanup);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
}

const char *e2e_tmpdir(void)
{
	if (!tmpdir[0]) {
		snprintf(tmpdir, sizeof(tmpdir), "/tmp/pvnet-guest-e2e.XXXXXX");
		if (!mkdtemp(tmpdir)) {
			perror("mkdtemp");
			exit(1);
		}
	}
	return tmpdir;
}

const char *e2e_netns(const char *tag)
{
	char *n;

	if (nnetns == E2E_MAX) {
		fprintf(stderr, "e2e: more than %d network namespaces\n", E2E_MAX);
		exit(1);
	}
	n = netns[nnetns];
	snprintf(n, 16, "pg%.3s%x%u", tag, (unsigned)getpid() & 0xffffff, nnetns);
	n[15] = '\0';
	if (e2e_sh("ip netns add %s && ip -n %s link set lo up", n, n) != 0) {
		fprintf(stderr, "cannot create netns %s\n", n);
		exit(1);
	}
	nnetns++;
	return n;
}

void e2e_atexit_host(struct mts_host *h)
{
	if (nhosts == PV_ARRAY_SIZE(hosts)) {
		fprintf(stderr, "e2e: more than %zu hosts\n", PV_ARRAY_SIZE(hosts));
		exit(1);
	}
	hosts[nhosts++] = h;
}
void e2e_atexit_guest(struct mts_guest *g)
{
	if (nguests == E2E_MAX) {
		fprintf(stderr, "e2e: more than %d guests\n", E2E_MAX);
		exit(1);
	}
	guests[nguests++] = g;
}

int e2e_done(void)
{
	printf("%d passed, %d failed\n", e2e_pass, e2e_fail);
	if (e2e_fail)
		printf("# logs kept in %s\n", tmpdir), setenv("PVNET_KEEP_TMP", "1", 1);
	return e2e_fail ? 1 : 0;
}

int e2e_sh(const char *fmt, ...)
{
	char cmd[1024], full[1100];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	snprintf(full, sizeof(full), "{ %s; } >/dev/null 2>&1", cmd);
	st = system(full);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

long e2e_sh_num(const char *fmt, ...)
{
	char cmd[1024], line[64];
	va_list ap;
	FILE *f;
	long v = -1;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	if (fgets(line, sizeof(line), f))
		v = strtol(line, NULL, 10);
	pclose(f);
	return v;
}

static unsigned count_in(const char *s, const char *needle)
{
	unsigned n = 0;
	for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

bool e2e_wait_control(const struct mts_guest *g, const char *cmd, const char *needle, unsigned count,
		      int timeout_ms)
{
	for (int t = 0; t <= timeout_ms; t += 10) {
		char *a = mts_control(g, cmd);
		bool ok = a && count_in(a, needle) >= count;
		free(a);
		if (ok)
			return true;
		usleep(10000);
	}
	return false;
}

long e2e_state_num(const struct mts_guest *g, const char *key)
{
	char *a = mts_control(g, "state"), pat[64], *dev, *p;
	long v = -1;

	if (!a)
		return -1;
	dev = strstr(a, "\ndevice/vif/");
	snprintf(pat, sizeof(pat), " %s=", key);
	if (dev && (p = strstr(dev, pat)))
		v = strtol(p + strlen(pat), NULL, 10);
	free(a);
	return v;
}

unsigned e2e_lines(const char *s)
{
	unsigned n = 0;
	for (; s && *s; s++)
		n += *s == '\n';
	return n;
}

char *e2e_trace_norm(const struct mts_guest *g, unsigned skip)
{
	char *a = mts_control(g, "trace-norm"), *p = a;

	if (!a)
		return NULL;
	for (unsigned i = 0; i < skip && p && *p; i++) {
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	memmove(a, p ? p : a + strlen(a), strlen(p ? p : "") + 1);
	return a;
}

bool e2e_golden(const char *got, const char *name)
{
	char path[512], want[16384];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", GOLDEN_DIR, name);
	f = fopen(path, "r");
	if (!f) {
		printf("# cannot open %s\n", path);
		return false;
	}
	n = fread(want, 1, sizeof(want) - 1, f);
	want[n] = '\0';
	fclose(f);
	if (got && !strcmp(got, want))
		return true;
	printf("# golden %s differs\n# --- want\n%s# --- got\n%s", name, want, got ? got : "(nothing)\n");
	return false;
}

uint8_t *e2e_bitmap(uint32_t nbits)
{
	void *p = mmap(NULL, (nbits + 7) / 8, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void e2e_free_bitmap(uint8_t *b, uint32_t nbits)
{
	if (b)
		munmap(b, (nbits + 7) / 8);
}

pid_t e2e_send_seq(const char *ns, const char *ifname, const uint8_t mac[6], uint32_t first,
		   uint32_t count, unsigned pps, uint8_t *sent)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	{
		char path[128];
		struct sockaddr_ll a = { .sll_family = AF_PACKET, .sll_halen = 6 };
		uint8_t frame[64];
		uint64_t t0;
		unsigned ok = 0;
		int fd, s;

		snprintf(path, sizeof(path), "/run/netns/%s", ns);
		fd = open(path, O_RDONLY);
		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
			_exit(255);
		s = socket(AF_PACKET, SOCK_RAW, 0);
		a.sll_ifindex = (int)if_nametoindex(ifname);
		if (s < 0 || !a.sll_ifindex)
			_exit(255);
		t0 = pv_now_ns();
		for (uint32_t i = 0; i < count; i++) {
			uint32_t seq = first + i;
			size_t len = tb_build_seq_frame(frame, sizeof(frame), mac, seq);
			if (pps && i % 32 == 0) {
				uint64_t due = t0 + (uint64_t)i * 1000000000u / pps, now = pv_now_ns();
				if (due > now)
					pv_sleep_ns(due - now);
			}
			if (sendto(s, frame, len, 0, (struct sockaddr *)&a, sizeof(a)) == (ssize_t)len) {
				ok++;
				if (sent)
					sent[i >> 3] |= (uint8_t)(1u << (i & 7));
			}
		}
		_exit(ok > 254 ? 254 : (int)ok);
	}
}

int e2e_wait_child(pid_t pid)
{
	int st;
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
