#include "toolstack/probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"

#define MAGIC "PVPROBE1"

struct probe_frame {
	uint8_t dst[6], src[6];
	uint16_t type;
	char magic[8];
	uint32_t run;
	uint8_t dir;
	uint8_t pad[3];
	uint32_t seq;
	uint64_t sent_ns;
} __attribute__((packed));

int probe_parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char tail;
	if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		if (v[i] > 255)
			return -EINVAL;
		mac[i] = (uint8_t)v[i];
	}
	return 0;
}

static int enter_ns(const char *ns)
{
	char p[300];
	int fd, r;
	snprintf(p, sizeof(p), "/run/netns/%s", ns);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = setns(fd, CLONE_NEWNET);
	close(fd);
	return r < 0 ? -errno : 0;
}

static int packet_socket(const char *ifname, uint16_t proto, int *ifindex, uint8_t mac[6], bool promisc)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(proto) };
	struct ifreq ifr;
	int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(proto));

	if (s < 0)
		return -errno;
	*ifindex = (int)if_nametoindex(ifname);
	sll.sll_ifindex = *ifindex;
	if (*ifindex == 0 || bind(s, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		close(s);
		return -ENODEV;
	}
	memset(&ifr, 0, sizeof(ifr));
	pv_strlcpy(ifr.ifr_name, ifname, IFNAMSIZ);
	if (mac && ioctl(s, SIOCGIFHWADDR, &ifr) == 0)
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	if (promisc) {
		struct packet_mreq mr = { .mr_ifindex = *ifindex, .mr_type = PACKET_MR_PROMISC };
		setsockopt(s, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr));
	}
	return s;
}

static void sender(struct probe_results *r, const char *ns, const char *ifname, const uint8_t *dst,
		   uint32_t run, int dir, unsigned interval_us)
{
	struct probe_dir *d = dir ? &r->from_guest : &r->to_guest;
	struct probe_frame f;
	uint8_t mac[6];
	int ifindex, s;
	uint64_t next;

	if (enter_ns(ns) < 0 || (s = packet_socket(ifname, PROBE_ETHERTYPE, &ifindex, mac, false)) < 0)
		_exit(1);
	memset(&f, 0, sizeof(f));
	memcpy(f.dst, dst, 6);
	memcpy(f.src, mac, 6);
	f.type = htons(PROBE_ETHERTYPE);
	memcpy(f.magic, MAGIC, 8);
	f.run = run;
	f.dir = (uint8_t)dir;
	__atomic_add_fetch(&r->ready, 1, __ATOMIC_SEQ_CST);
	next = pv_now_ns();
	for (uint32_t seq = 0; !r->stop && seq < PROBE_MAX_SEQ; seq++) {
		f.seq = seq;
		f.sent_ns = pv_now_ns();
		/* A send that fails (link down during migration) is still a
		 * probe the network did not carry: count it as sent. */
		(void)send(s, &f, sizeof(f), MSG_DONTWAIT);
		d->sent = seq + 1;
		next += (uint64_t)interval_us * 1000u;
		uint64_t now = pv_now_ns();
		if (next > now)
			pv_sleep_ns(next - now);
	}
	_exit(0);
}

static void receiver(struct probe_results *r, const char *ns, const char *ifname, uint32_t run, int dir,
		     bool promisc)
{
	struct probe_dir *d = dir ? &r->from_guest : &r->to_guest;
	uint8_t *seen = r->seen[dir];
	int ifindex, s;

	if (enter_ns(ns) < 0 || (s = packet_socket(ifname, PROBE_ETHERTYPE, &ifindex, NULL, promisc)) < 0)
		_exit(1);
	__atomic_add_fetch(&r->ready, 1, __ATOMIC_SEQ_CST);
	for (;;) {
		struct pollfd pfd = { .fd = s, .events = POLLIN };
		struct probe_frame f;
		ssize_t n;
		uint64_t now;

		if (poll(&pfd, 1, 50) <= 0) {
			if (r->stop == 2)
				break;
			continue;
		}
		n = recv(s, &f, sizeof(f), MSG_DONTWAIT);
		now = pv_now_ns();
		if (n != (ssize_t)sizeof(f) || memcmp(f.magic, MAGIC, 8) || f.run != run || f.dir != dir ||
		    f.seq >= PROBE_MAX_SEQ)
			continue;
		if (seen[f.seq / 8] & (1u << (f.seq % 8))) {
			d->duplicates++;
			continue;
		}
		seen[f.seq / 8] |= (uint8_t)(1u << (f.seq % 8));
		if (d->last_rx_ns && now - d->last_rx_ns > d->max_gap_ns) {
			d->max_gap_ns = now - d->last_rx_ns;
			d->gap_start_ns = d->last_rx_ns;
			d->gap_end_ns = now;
		}
		d->last_rx_ns = now;
		d->received++;
	}
	_exit(0);
}

/* Destination-bridge capture: the guest's announcements and first frames. */
static void capture(struct probe_results *r, const char *ns, const uint8_t *gmac)
{
	struct probe_capture *c = &r->dest;
	int ifindex, s;
	uint8_t buf[2048];

	if (enter_ns(ns) < 0 || (s = packet_socket("xenbr0", ETH_P_ALL, &ifindex, NULL, true)) < 0)
		_exit(1);
	__atomic_add_fetch(&r->ready, 1, __ATOMIC_SEQ_CST);
	for (;;) {
		struct pollfd pfd = { .fd = s, .events = POLLIN };
		ssize_t n;
		uint64_t now;
		uint16_t type;

		if (poll(&pfd, 1, 50) <= 0) {
			if (r->stop == 2)
				break;
			continue;
		}
		n = recv(s, buf, sizeof(buf), MSG_DONTWAIT);
		now = pv_now_ns();
		/* Only what the guest sends once frozen for the move counts:
		 * its frames from the source host, flooded here by the switch
		 * before it, must not pass for the resumed guest's. */
		if (n < 14 || memcmp(buf + 6, gmac, 6))
			continue;
		{
			uint64_t since = __atomic_load_n(&r->dest_since_ns, __ATOMIC_ACQUIRE);
			if (!since || now < since)
				continue;
		}
		type = (uint16_t)(buf[12] << 8 | buf[13]);
		if (type == 0x0806 && n >= 42 && !memcmp(buf + 28, buf + 38, 4)) {
			/* ARP whose sender IP equals its target IP: gratuitous. */
			if (!c->garp_ns)
				c->garp_ns = now;
			c->garps++;
		} else if (type == 0x86DD && n >= 14 + 40 + 1 && buf[14 + 6] == 58 && buf[14 + 40] == 136) {
			if (!c->na_ns)
				c->na_ns = now;
			c->nas++;
		} else if (type == 0x0800 && n >= 14 + 20 + 1 && (buf[14] >> 4) == 4 &&
			   n > 14 + (buf[14] & 0xF) * 4 && buf[14 + 9] == 1 &&
			   buf[14 + (buf[14] & 0xF) * 4] == 0) {
			if (!c->first_reply_ns)
				c->first_reply_ns = now;
		} else if (type == 0x86DD && n >= 14 + 40 + 1 && buf[14 + 6] == 58 && buf[14 + 40] == 129) {
			if (!c->first_reply_ns)
				c->first_reply_ns = now;
		} else if ((type == 0x0800 || type == 0x86DD) && !c->first_ip_ns) {
			c->first_ip_ns = now;
		}
	}
	_exit(0);
}

int probe_start(struct probe_session *s, const struct probe_config *cfg)
{
	pid_t parent = getpid();
	struct probe_results *r;
	uint8_t brmac[6];
	unsigned interval = cfg->interval_us ? cfg->interval_us : 200;
	uint32_t run = (uint32_t)(pv_now_ns() ^ (uint64_t)getpid());
	int expect = 4, ifindex, fd;
	pid_t pid;

	memset(s, 0, sizeof(*s));
	r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED)
		return -errno;
	s->res = r;
	/* The switch bridge's MAC is where guest probes go. */
	pid = fork();
	if (pid == 0) {
		if (enter_ns(cfg->switch_ns) < 0 || (fd = packet_socket("br0", PROBE_ETHERTYPE, &ifindex, brmac, false)) < 0)
			_exit(1);
		memcpy(r->seen[0], brmac, 6);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		probe_free(s);
		return -ENODEV;
	}
	memcpy(brmac, r->seen[0], 6);
	memset(r->seen[0], 0, 6);

	/* A child ends with the toolstack, even if that is killed: no stray probes. */
#define SPAWN(call) do { pid = fork(); if (pid == 0) { pv_die_with_parent(parent, SIGKILL); call; } \
		if (pid > 0) s->pids[s->npids++] = pid; } while (0)
	SPAWN(receiver(r, cfg->guest_ns, cfg->guest_if, run, 0, false));
	SPAWN(receiver(r, cfg->switch_ns, "br0", run, 1, false));
	if (cfg->dest_ns) {
		SPAWN(capture(r, cfg->dest_ns, cfg->guest_mac));
		expect++;
	}
	for (int i = 0; i < 200 && r->ready < expect - 2; i++)
		pv_sleep_ns(5000000);
	SPAWN(sender(r, cfg->switch_ns, "br0", cfg->guest_mac, run, 0, interval));
	SPAWN(sender(r, cfg->guest_ns, cfg->guest_if, brmac, run, 1, interval));
#undef SPAWN
	for (int i = 0; i < 200 && r->ready < expect; i++)
		pv_sleep_ns(5000000);
	return r->ready >= expect ? 0 : -EIO;
}

void probe_stop(struct probe_session *s, int drain_ms)
{
	if (!s->res)
		return;
	s->res->stop = 1;
	pv_sleep_ns((uint64_t)drain_ms * 1000000u);
	s->res->stop = 2;
	for (unsigned i = 0; i < s->npids; i++) {
		int st;
		for (int t = 0; t < 100; t++) {
			if (waitpid(s->pids[i], &st, WNOHANG) == s->pids[i])
				goto reaped;
			pv_sleep_ns(10000000);
		}
		kill(s->pids[i], SIGKILL);
		waitpid(s->pids[i], &st, 0);
reaped:;
	}
	s->npids = 0;
}

void probe_free(struct probe_session *s)
{
	if (s->npids)
		probe_stop(s, 0);
	if (s->res)
		munmap(s->res, sizeof(*s->res));
	s->res = NULL;
}
