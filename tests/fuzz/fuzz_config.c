/*
 * libFuzzer harness: config.c's loader on any file content (written to a
 * private temporary file each time). It either accepts the file, with
 * every value in its range, or refuses it with a message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static char path[64];
	struct config cfg;
	char err[512] = "";
	FILE *f;

	if (!path[0]) {
		int fd;

		snprintf(path, sizeof(path), "/tmp/bd-fuzz-config-XXXXXX");
		fd = mkstemp(path);
		if (fd < 0)
			abort();
		close(fd);
	}
	f = fopen(path, "w");
	if (!f)
		abort();
	fwrite(data, 1, size, f);
	fclose(f);
	unsetenv("DATABASE_URL");
	config_defaults(&cfg);
	if (config_load(&cfg, path, err, sizeof(err))) {
		if (!err[0])
			abort();
	} else if (cfg.tcp_port < 0 || cfg.tcp_port > 65535 ||
		   cfg.http_port < 0 || cfg.http_port > 65535 ||
		   !cfg.history_size || !cfg.instance_id ||
		   !cfg.database_url || !cfg.listen_address) {
		abort();
	}
	config_fini(&cfg);
	return 0;
}
