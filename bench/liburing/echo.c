// echo.c: a C echo server on liburing, the reference the Go fast path is
// measured against. One thread, one ring (SINGLE_ISSUER + DEFER_TASKRUN,
// ring fd registered), multishot accept, multishot receive into a
// provided-buffer ring, each received buffer sent back as it is (the buffer
// returns to the ring when its send completes), one io_uring_enter per turn
// that submits everything and waits for at least one completion.
//
//	gcc -O2 -o echo bench/liburing/echo.c -luring
//	taskset -c 0 ./echo -addr 127.0.0.1:7000
//
// It prints "listening on ADDR" once it accepts, as the suite's servers do.
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define ENTRIES 4096
#define BUF_COUNT 4096
#define BUF_SIZE 4096
#define GROUP 0

enum { OP_ACCEPT = 1, OP_RECV, OP_SEND };

// User data: op in the low 8 bits, fd above, buffer id above that (sends).
static inline __u64 ud(int op, int fd, int bid) { return (__u64)op | (__u64)fd << 8 | (__u64)bid << 40; }

static struct io_uring ring;
static struct io_uring_buf_ring *br;
static char *bufs;
static volatile sig_atomic_t stop;

static void on_signal(int sig) { (void)sig; stop = 1; }

static struct io_uring_sqe *sqe(void) {
	struct io_uring_sqe *s = io_uring_get_sqe(&ring);
	if (!s) {
		io_uring_submit(&ring);
		s = io_uring_get_sqe(&ring);
	}
	return s;
}

static void recycle(int bid) {
	io_uring_buf_ring_add(br, bufs + (size_t)bid * BUF_SIZE, BUF_SIZE, bid, io_uring_buf_ring_mask(BUF_COUNT), 0);
	io_uring_buf_ring_advance(br, 1);
}

static void arm_recv(int fd) {
	struct io_uring_sqe *s = sqe();
	io_uring_prep_recv_multishot(s, fd, NULL, 0, 0);
	s->flags |= IOSQE_BUFFER_SELECT;
	s->buf_group = GROUP;
	io_uring_sqe_set_data64(s, ud(OP_RECV, fd, 0));
}

// What of each buffer a send has yet to send: its rest after a short send.
static int sent[BUF_COUNT], length[BUF_COUNT];

static void send_buf(int fd, int bid) {
	struct io_uring_sqe *s = sqe();
	io_uring_prep_send(s, fd, bufs + (size_t)bid * BUF_SIZE + sent[bid], length[bid] - sent[bid], MSG_NOSIGNAL);
	io_uring_sqe_set_data64(s, ud(OP_SEND, fd, bid));
}

static void arm_accept(int lfd) {
	struct io_uring_sqe *s = sqe();
	io_uring_prep_multishot_accept(s, lfd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(s, ud(OP_ACCEPT, lfd, 0));
}

int main(int argc, char **argv) {
	const char *addr = "127.0.0.1:7000";
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], "-addr"))
			addr = argv[++i];
	char host[64];
	snprintf(host, sizeof host, "%s", addr);
	char *colon = strrchr(host, ':');
	if (!colon) {
		fprintf(stderr, "bad -addr %s\n", addr);
		return 2;
	}
	*colon = 0;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(atoi(colon + 1))};
	inet_pton(AF_INET, host, &sa.sin_addr);

	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	setsockopt(lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) || listen(lfd, 4096)) {
		perror("listen");
		return 1;
	}

	struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
					     IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL,
				    .cq_entries = 8 * ENTRIES};
	int ret = io_uring_queue_init_params(ENTRIES, &ring, &p);
	if (ret < 0) {
		fprintf(stderr, "io_uring_queue_init: %s\n", strerror(-ret));
		return 1;
	}
	io_uring_register_ring_fd(&ring);
	// Mapped and registered by hand: io_uring_setup_buf_ring is liburing 2.4+.
	br = mmap(NULL, BUF_COUNT * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct io_uring_buf_reg reg = {.ring_addr = (unsigned long)br, .ring_entries = BUF_COUNT, .bgid = GROUP};
	io_uring_buf_ring_init(br);
	if ((ret = io_uring_register_buf_ring(&ring, &reg, 0)) < 0) {
		fprintf(stderr, "buffer ring: %s\n", strerror(-ret));
		return 1;
	}
	bufs = mmap(NULL, (size_t)BUF_COUNT * BUF_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	for (int i = 0; i < BUF_COUNT; i++)
		io_uring_buf_ring_add(br, bufs + (size_t)i * BUF_SIZE, BUF_SIZE, i, io_uring_buf_ring_mask(BUF_COUNT), i);
	io_uring_buf_ring_advance(br, BUF_COUNT);

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	arm_accept(lfd);
	printf("listening on %s\n", addr);
	fflush(stdout);

	while (!stop) {
		ret = io_uring_submit_and_wait(&ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -ETIME && ret != -EBUSY) {
			fprintf(stderr, "io_uring_submit_and_wait: %s\n", strerror(-ret));
			return 1;
		}
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		io_uring_for_each_cqe(&ring, head, cqe) {
			n++;
			__u64 d = cqe->user_data;
			int op = d & 0xff, fd = (d >> 8) & 0xffffffff, res = cqe->res;
			switch (op) {
			case OP_ACCEPT:
				if (res >= 0)
					arm_recv(res);
				if (!(cqe->flags & IORING_CQE_F_MORE))
					arm_accept(lfd);
				break;
			case OP_RECV:
				if (res > 0) {
					int bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
					sent[bid] = 0;
					length[bid] = res;
					send_buf(fd, bid);
				} else if (res == -ENOBUFS) {
					// re-armed below
				} else if (res <= 0) {
					close(fd);
					break;
				}
				if (!(cqe->flags & IORING_CQE_F_MORE))
					arm_recv(fd);
				break;
			case OP_SEND: {
				int bid = (d >> 40) & 0xffff;
				if (res > 0 && (sent[bid] += res) < length[bid]) {
					send_buf(fd, bid); // a short send: the rest
					break;
				}
				recycle(bid);
				break;
			}
			}
		}
		io_uring_cq_advance(&ring, n);
	}
	io_uring_queue_exit(&ring);
	return 0;
}
