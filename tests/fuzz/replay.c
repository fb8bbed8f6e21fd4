/* postroom: ISC license, see LICENSE. */
/*
 * The replay driver for a machine without clang: linked with a harness in place of libFuzzer's
 * main, it runs LLVMFuzzerTestOneInput once on each file named on the command line, as a
 * libFuzzer binary does when given files. It does not fuzz. Exit 0 when every input ran; the
 * sanitizers end the process on any finding.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-')
			continue;	/* libFuzzer's options: nothing to do here */
		int fd = open(argv[i], O_RDONLY | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0) {
			perror(argv[i]);
			return 1;
		}
		size_t n = (size_t)st.st_size, got = 0;
		uint8_t *data = malloc(n ? n : 1);
		if (!data)
			return 1;
		while (got < n) {
			ssize_t r = read(fd, data + got, n - got);
			if (r <= 0) {
				perror(argv[i]);
				return 1;
			}
			got += (size_t)r;
		}
		close(fd);
		fprintf(stderr, "Running: %s\n", argv[i]);
		LLVMFuzzerTestOneInput(data, n);
		fprintf(stderr, "Executed %s\n", argv[i]);
		free(data);
	}
	return 0;
}
