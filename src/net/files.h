/*
 * The browser client's static files, read into memory once at start (the
 * loop never touches the disk). Only regular files directly in the
 * directory are served, by exact name: no path ever reaches the file
 * system, so there is nothing to traverse.
 */
#ifndef BD_NET_FILES_H
#define BD_NET_FILES_H

#include <stddef.h>

struct files;

struct file {
	char *name;		/* "/index.html" */
	const char *type;	/* Content-Type */
	char *data;
	size_t len;
	char etag[24];		/* quoted, from the contents */
};

/* Loads dir's files (each at most 4 MiB); a missing or unreadable dir
 * leaves the set empty (logged). Never NULL. */
struct files *files_load(const char *dir);
void files_free(struct files *fs);
/* The file for a request path ("/" is /index.html), or NULL. */
const struct file *files_get(const struct files *fs, const char *path,
			     size_t len);

#endif
