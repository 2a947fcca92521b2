// nfq-delay: holds every packet that iptables sends to an NFQUEUE for a fixed
// time, then lets it go (NF_ACCEPT), in arrival order. A stand-in for
// `tc qdisc ... netem delay` on kernels built without sch_netem; used by
// docker/faults `slow`. Runs inside a container's network namespace (needs
// CAP_NET_ADMIN) next to a rule such as
//
//   iptables -t mangle -A OUTPUT ! -o lo -p tcp -j NFQUEUE --queue-num 7 --queue-bypass
//
// --queue-bypass makes the kernel pass packets unqueued while no nfq-delay
// listens, so stopping this program removes the delay instead of cutting the
// node off. On SIGTERM/SIGINT every held packet is released at once.
//
// Usage: nfq-delay [-q QUEUE] [-p PIDFILE] DELAY_MS
//
// Limits: a constant delay, no jitter, loss or reordering; one-way (only the
// packets the rule selects); at most QUEUE_MAX packets held at once (beyond
// that the kernel's fail-open flag lets packets through undelayed).
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>  // NF_ACCEPT

#define QUEUE_MAX 65536u

static uint32_t ids[QUEUE_MAX];
static int64_t due[QUEUE_MAX];
static unsigned head, count;
static int64_t delay_ms;
static volatile sig_atomic_t stop;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int on_packet(struct nfq_q_handle* qh, struct nfgenmsg* msg, struct nfq_data* nfa, void* data) {
  (void)msg;
  (void)data;
  struct nfqnl_msg_packet_hdr* ph = nfq_get_msg_packet_hdr(nfa);
  if (ph == NULL) return 0;
  uint32_t id = ntohl(ph->packet_id);
  if (count == QUEUE_MAX) {  // full: let it go now rather than drop it
    nfq_set_verdict(qh, id, NF_ACCEPT, 0, NULL);
    return 0;
  }
  unsigned tail = (head + count) % QUEUE_MAX;
  ids[tail] = id;
  due[tail] = now_ms() + delay_ms;
  count++;
  return 0;
}

static void release(struct nfq_q_handle* qh, int all) {
  int64_t now = now_ms();
  while (count > 0 && (all || due[head] <= now)) {
    nfq_set_verdict(qh, ids[head], NF_ACCEPT, 0, NULL);
    head = (head + 1) % QUEUE_MAX;
    count--;
  }
}

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

int main(int argc, char** argv) {
  int queue = 7;
  const char* pidfile = NULL;
  int opt;
  while ((opt = getopt(argc, argv, "q:p:h")) != -1) {
    switch (opt) {
      case 'q': queue = atoi(optarg); break;
      case 'p': pidfile = optarg; break;
      default:
        fprintf(stderr, "usage: nfq-delay [-q QUEUE] [-p PIDFILE] DELAY_MS\n");
        return opt == 'h' ? 0 : 2;
    }
  }
  if (optind + 1 != argc || atoll(argv[optind]) < 0) {
    fprintf(stderr, "usage: nfq-delay [-q QUEUE] [-p PIDFILE] DELAY_MS\n");
    return 2;
  }
  delay_ms = atoll(argv[optind]);

  struct nfq_handle* h = nfq_open();
  if (h == NULL) {
    perror("nfq-delay: nfq_open");
    return 1;
  }
  struct nfq_q_handle* qh = nfq_create_queue(h, (uint16_t)queue, on_packet, NULL);
  if (qh == NULL) {
    fprintf(stderr, "nfq-delay: cannot bind queue %d (is another nfq-delay running? CAP_NET_ADMIN?)\n", queue);
    return 1;
  }
  if (nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0) {
    perror("nfq-delay: nfq_set_mode");
    return 1;
  }
  nfq_set_queue_maxlen(qh, QUEUE_MAX);
  nfq_set_queue_flags(qh, NFQA_CFG_F_FAIL_OPEN, NFQA_CFG_F_FAIL_OPEN);
  nfnl_rcvbufsiz(nfq_nfnlh(h), 8 << 20);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGHUP, SIG_IGN);

  if (pidfile != NULL) {
    FILE* f = fopen(pidfile, "w");
    if (f == NULL) {
      perror("nfq-delay: pidfile");
      return 1;
    }
    fprintf(f, "%ld\n", (long)getpid());
    fclose(f);
  }
  fprintf(stderr, "nfq-delay: holding packets of queue %d for %lld ms\n", queue, (long long)delay_ms);

  int fd = nfq_fd(h);
  char buf[65536] __attribute__((aligned));
  while (!stop) {
    int timeout = -1;
    if (count > 0) {
      int64_t wait = due[head] - now_ms();
      timeout = wait < 0 ? 0 : (int)wait;
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int rc = poll(&p, 1, timeout);
    if (rc < 0 && errno != EINTR) {
      perror("nfq-delay: poll");
      break;
    }
    if (rc > 0) {
      for (;;) {  // drain what is readable now
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0) {
          if (errno == ENOBUFS) continue;  // the kernel dropped queue messages; keep going
          break;
        }
        nfq_handle_packet(h, buf, (int)n);
      }
    }
    release(qh, 0);
  }
  release(qh, 1);
  nfq_destroy_queue(qh);
  nfq_close(h);
  if (pidfile != NULL) unlink(pidfile);
  return 0;
}
