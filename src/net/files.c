/* See files.h: static files held in memory, looked up by exact name. */
#include "net/files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util/xalloc.h"

#define FILE_MAX (4 << 20)
#define FILES_MAX 256

struct files {
	struct file *v;
	size_t n;
};

static const char *type_of(const char *name)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
		{ ".html", "text/html; charset=utf-8" },
		{ ".css", "text/css; charset=utf-8" },
		{ ".js", "text/javascript; charset=utf-8" },
		{ ".json", "application/json" },
		{ ".svg", "image/svg+xml" },
		{ ".png", "image/png" },
		{ ".ico", "image/x-icon" },
		{ ".txt", "text/plain; charset=utf-8" },
	};
	const char *dot = strrchr(name, '.');

	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(dot, types[i].ext))
			return types[i].type;
	return "application/octet-stream";
}

/* Names we serve: letters, digits, '.', '_', '-', not starting with '.'. */
static int name_ok(const char *n)
{
	return n[0] && n[0] != '.' &&
	       strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789._-") == strlen(n);
}

static int read_all(int fd, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

static void load_one(struct files *fs, int dfd, const char *name)
{
	struct file *f = &fs->v[fs->n];
	struct stat st;
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > FILE_MAX) {
		close(fd);
		return;
	}
	f->len = (size_t)st.st_size;
	f->data = xmalloc(f->len + 1);
	if (read_all(fd, f->data, f->len)) {
		log_warn("static_unreadable", LOG_S("file", name),
			 LOG_S("reason", strerror(errno)));
		free(f->data);
		close(fd);
		return;
	}
	close(fd);
	for (size_t i = 0; i < f->len; i++)
		h = (h ^ (unsigned char)f->data[i]) * 1099511628211ULL;
	snprintf(f->etag, sizeof(f->etag), "\"%016" PRIx64 "\"", h);
	f->name = xmalloc(strlen(name) + 2);
	f->name[0] = '/';
	strcpy(f->name + 1, name);
	f->type = type_of(name);
	fs->n++;
}

struct files *files_load(const char *dir)
{
	struct files *fs = xcalloc(1, sizeof(*fs));
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d) {
		log_warn("static_unreadable", LOG_S("dir", dir),
			 LOG_S("reason", strerror(errno)), LOG_U("files", 0));
		return fs;
	}
	fs->v = xcalloc(FILES_MAX, sizeof(*fs->v));
	while ((de = readdir(d)) && fs->n < FILES_MAX)
		if (name_ok(de->d_name))
			load_one(fs, dirfd(d), de->d_name);
	closedir(d);
	log_info("static", LOG_U("files", fs->n), LOG_S("dir", dir));
	return fs;
}

void files_free(struct files *fs)
{
	if (!fs)
		return;
	for (size_t i = 0; i < fs->n; i++) {
		free(fs->v[i].name);
		free(fs->v[i].data);
	}
	free(fs->v);
	free(fs);
}

const struct file *files_get(const struct files *fs, const char *path,
			     size_t len)
{
	if (len == 1 && path[0] == '/') {
		path = "/index.html";
		len = strlen(path);
	}
	for (size_t i = 0; i < fs->n; i++)
		if (strlen(fs->v[i].name) == len &&
		    !memcmp(fs->v[i].name, path, len))
			return &fs->v[i];
	return NULL;
}
