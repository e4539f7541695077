/*
 * nop.c: the C twin of ring.BenchmarkNop, with liburing. For each batch size,
 * get an SQE and prep a NOP per operation, one io_uring_submit_and_wait per
 * batch, then reap the batch with io_uring_peek_batch_cqe + io_uring_cq_advance.
 * Prints Go-benchmark-style lines: name, ops, ns/op (wall time), cpu-ns/op
 * (CPU time of the process, user and system, per operation).
 *
 * Build: gcc -O2 -o nop nop.c -luring     Run: ./nop [ops] [rounds]
 */
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static double cpu_ns(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e9 +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e3;
}

static double cpu_per_op; /* cpu-ns/op of the last run */

static double run(struct io_uring *ring, unsigned batch, long ops)
{
	struct io_uring_cqe *cqes[32];
	double cpu = cpu_ns(), start = now_ns();
	for (long done = 0; done < ops;) {
		unsigned n = ops - done < batch ? (unsigned)(ops - done) : batch;
		for (unsigned i = 0; i < n; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
			if (!sqe) {
				fprintf(stderr, "SQ full\n");
				exit(1);
			}
			io_uring_prep_nop(sqe);
		}
		int ret = io_uring_submit_and_wait(ring, n);
		if (ret < 0) {
			fprintf(stderr, "submit_and_wait: %s\n", strerror(-ret));
			exit(1);
		}
		for (unsigned got = 0; got < n;) {
			unsigned m = io_uring_peek_batch_cqe(ring, cqes, n);
			io_uring_cq_advance(ring, m);
			got += m;
		}
		done += n;
	}
	double wall = (now_ns() - start) / ops;
	cpu_per_op = (cpu_ns() - cpu) / ops;
	return wall;
}

int main(int argc, char **argv)
{
	long ops = argc > 1 ? atol(argv[1]) : 5000000;
	int rounds = argc > 2 ? atoi(argv[2]) : 5;
	struct io_uring ring;
	int ret = io_uring_queue_init(64, &ring, 0); /* as ring.New(64) */
	if (ret < 0) {
		fprintf(stderr, "io_uring_queue_init: %s\n", strerror(-ret));
		return 1;
	}
	unsigned batches[] = {1, 32};
	run(&ring, 32, ops / 10); /* warm up */
	for (int r = 0; r < rounds; r++)
		for (int b = 0; b < 2; b++) {
			double wall = run(&ring, batches[b], ops);
			printf("BenchmarkNopLiburing/batch=%u\t%ld\t%.1f ns/op\t%.1f cpu-ns/op\n",
			       batches[b], ops, wall, cpu_per_op);
		}
	io_uring_queue_exit(&ring);
	return 0;
}
