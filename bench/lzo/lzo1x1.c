/* lzo1x1: the C side of the LZO1X encoder benchmark of issue 18
 * (bench/lzo/run.sh). It compresses each page of a corpus written by
 * "lzobench corpus" with liblzo2's lzo1x_1_compress, as makedumpfile -l
 * does, and prints the same line as "lzobench compress".
 *
 *   lzo1x1 FILE PAGESIZE [REPS]
 */
#include <lzo/lzo1x.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: lzo1x1 FILE PAGESIZE [REPS]\n");
		return 2;
	}
	long size = atol(argv[2]);
	long reps = argc == 4 ? atol(argv[3]) : 1;
	if (size <= 0 || reps <= 0 || lzo_init() != LZO_E_OK) {
		fprintf(stderr, "lzo1x1: bad arguments or lzo_init failed\n");
		return 2;
	}
	FILE *f = fopen(argv[1], "rb");
	if (!f) {
		perror(argv[1]);
		return 1;
	}
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *data = malloc(len);
	if (!data || fread(data, 1, len, f) != (size_t)len || len % size != 0 || len == 0) {
		fprintf(stderr, "lzo1x1: cannot read %s as whole %ld-byte pages\n", argv[1], size);
		return 1;
	}
	fclose(f);
	long n = len / size;
	unsigned char *out = malloc(size + size / 16 + 64 + 3);
	void *wrk = malloc(LZO1X_1_MEM_COMPRESS);
	long total = 0;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long r = 0; r < reps; r++) {
		total = 0;
		for (long i = 0; i < n; i++) {
			lzo_uint olen;
			if (lzo1x_1_compress(data + i * size, size, out, &olen, wrk) != LZO_E_OK) {
				fprintf(stderr, "lzo1x1: lzo1x_1_compress failed\n");
				return 1;
			}
			total += olen;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ns = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / (double)(n * reps);
	printf("liblzo2-lzo1x_1 pages %ld in %ld out %ld ratio %.4f ns/page %.0f\n", n, n * size, total, (double)total / (n * size), ns);
	return 0;
}
