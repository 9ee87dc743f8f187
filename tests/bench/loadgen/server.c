/*
 * loadgen: the servers' RSS, CPU time and descriptors from /proc, and
 * their GET /health (server.h). Only reads; what a figure means is in
 * report.c.
 */
#include "server.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"

static long server_status_kb(long pid, const char *key)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	long kb = -1;
	FILE *f;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			kb = strtol(line + klen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb;
}

/* User + system CPU seconds of process pid, from /proc (-1: unknown). */
static double server_cpu_s(long pid)
{
	unsigned long long ut, st;
	char path[64], buf[1024], *p;
	long tck = sysconf(_SC_CLK_TCK);
	size_t n;
	FILE *f;

	if (pid <= 0 || tck <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* After "pid (comm) ": state is field 3, utime 14, stime 15. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
			 "%llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)tck;
}

/* Descriptors the server has open (-1: unknown). */
static long server_count_fds(long pid)
{
	char path[64];
	struct dirent *de;
	long n = 0;
	DIR *d;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* The parent pid of process pid (-1: unknown). */
static long server_ppid(long pid)
{
	char path[64], buf[512], *p;
	long ppid = -1;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %ld", &ppid) != 1)
		return -1;
	return ppid;
}

/*
 * pid and, with tree, its children (nginx's master and workers): their
 * summed figures. -1 when pid itself cannot be read.
 */
struct server_sum {
	long rss, hwm, fds;
	double cpu;
};

static void server_add(struct server_sum *sum, long pid, bool end)
{
	long rss = server_status_kb(pid, "VmRSS");
	double cpu = server_cpu_s(pid);

	if (rss >= 0)
		sum->rss += rss;
	if (cpu >= 0)
		sum->cpu += cpu;
	if (!end)
		return;
	rss = server_status_kb(pid, "VmHWM");
	if (rss >= 0)
		sum->hwm += rss;
	rss = server_count_fds(pid);
	if (rss >= 0)
		sum->fds += rss;
}

static struct server_sum server_sum(long pid, bool tree, bool end)
{
	struct server_sum sum = { 0, 0, 0, 0 };
	struct dirent *de;
	DIR *d;

	if (server_status_kb(pid, "VmRSS") < 0)
		return (struct server_sum){ -1, -1, -1, -1 };
	server_add(&sum, pid, end);
	if (!tree || !(d = opendir("/proc")))
		return sum;
	while ((de = readdir(d))) {
		char *e;
		long child = strtol(de->d_name, &e, 10);

		if (*e || child <= 0 || child == pid)
			continue;
		if (server_ppid(child) == pid)
			server_add(&sum, child, end);
	}
	closedir(d);
	return sum;
}

void server_sample(struct server_proc *srv, const long *pids, uint32_t n,
		   bool tree, enum server_phase phase)
{
	uint32_t i;

	for (i = 0; i < n; i++) {
		struct server_proc *sv = &srv[i];
		struct server_sum sum = server_sum(pids[i], tree,
						   phase == SERVER_END);
		long rss = sum.rss;
		double cpu = sum.cpu;

		switch (phase) {
		case SERVER_BEFORE:
			*sv = (struct server_proc){ rss, -1, -1, -1,
						    cpu, -1, -1, -1 };
			break;
		case SERVER_AFTER_SETUP:
			sv->rss_setup = rss;
			sv->cpu_setup = cpu;
			break;
		case SERVER_END:
			sv->rss_end = rss;
			sv->rss_peak = sum.hwm;
			sv->fds = sum.fds;
			sv->cpu_end = cpu;
			break;
		}
	}
}

void server_get_health(struct server_health *h, const struct sockaddr_in *addr,
		       const char *host)
{
	char req[128], body[1024];
	int fd = http_open(addr);

	*h = (struct server_health){ -1, -1, -1, -1 };
	if (fd < 0)
		return;
	if (http_format(req, sizeof(req), "GET", "/health", host, NULL,
			false) < 0) {
		close(fd);
		return;
	}
	h->status = http_call(fd, req, body, sizeof(body));
	close(fd);
	h->sessions = http_json_int(body, "sessions");
	h->streams = http_json_int(body, "streams");
	h->queue = http_json_num(body, "notify_queue_usage");
}
