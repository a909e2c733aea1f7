/*
 * udp-floor: what this machine's kernel charges to send one 1,200-byte datagram over loopback, the
 * floor under any SFU's "CPU per forwarded packet" in sportello-load (BENCHMARKS.md, issue 15).
 *
 * The sender (pinned to CPU 0, like the server in the load runs) sends batches of 32 datagrams
 * with sendmmsg, 200 µs apart, to one socket drained with recvmmsg by a thread pinned to CPU 1
 * (like the load tool). It prints the sender thread's CPU time (user + system) per datagram.
 * SEGMENTS > 1 sends runs of that many datagrams as one UDP GSO message (UDP_SEGMENT), as the
 * SFU does for runs to one destination.
 *
 *   gcc -O2 -o /tmp/udp-floor scripts/udp-floor.c -lpthread && /tmp/udp-floor 1 && /tmp/udp-floor 4
 *
 * Nothing of Sportello's runs here: it is the peer the load figures are read against.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

#define BATCH 32
#define SIZE 1200
#define ROUNDS 20000

static int receiver;
static volatile int stop;

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static void *drain(void *unused) {
    static char bufs[BATCH][1500];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    long received = 0;
    (void)unused;
    pin(1);
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = sizeof bufs[i];
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    while (!stop) {
        int n = recvmmsg(receiver, msgs, BATCH, 0, NULL);
        if (n > 0) received += n;
    }
    fprintf(stderr, "received %ld datagrams\n", received);
    return NULL;
}

int main(int argc, char **argv) {
    int segments = argc > 1 ? atoi(argv[1]) : 1;
    if (segments < 1 || BATCH % segments != 0) {
        fprintf(stderr, "usage: udp-floor [SEGMENTS: 1, 2, 4, 8, 16 or 32]\n");
        return 2;
    }
    pin(0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    int rcvbuf = 8 << 20;
    struct timeval timeout = {0, 100000};
    receiver = socket(AF_INET, SOCK_DGRAM, 0);
    setsockopt(receiver, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    setsockopt(receiver, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    if (bind(receiver, (struct sockaddr *)&addr, sizeof addr) || getsockname(receiver, (struct sockaddr *)&addr, &len)) {
        perror("receiver");
        return 1;
    }
    pthread_t thread;
    pthread_create(&thread, NULL, drain, NULL);

    int sender = socket(AF_INET, SOCK_DGRAM, 0);
    static char payload[SIZE * BATCH];
    static char control[BATCH][CMSG_SPACE(sizeof(unsigned short))];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    int messages = BATCH / segments;
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < messages; i++) {
        iov[i].iov_base = payload;
        iov[i].iov_len = (size_t)SIZE * segments;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &addr;
        msgs[i].msg_hdr.msg_namelen = sizeof addr;
        if (segments > 1) {
            msgs[i].msg_hdr.msg_control = control[i];
            msgs[i].msg_hdr.msg_controllen = sizeof control[i];
            struct cmsghdr *cm = CMSG_FIRSTHDR(&msgs[i].msg_hdr);
            cm->cmsg_level = SOL_UDP;
            cm->cmsg_type = UDP_SEGMENT;
            cm->cmsg_len = CMSG_LEN(sizeof(unsigned short));
            *(unsigned short *)CMSG_DATA(cm) = SIZE;
        }
    }

    struct rusage before, after;
    struct timespec pause = {0, 200000};
    long sent = 0;
    getrusage(RUSAGE_THREAD, &before);
    for (int round = 0; round < ROUNDS; round++) {
        int n = sendmmsg(sender, msgs, messages, 0);
        if (n < 0) {
            perror("sendmmsg");
            return 1;
        }
        sent += (long)n * segments;
        nanosleep(&pause, NULL);
    }
    getrusage(RUSAGE_THREAD, &after);
    double us = (after.ru_utime.tv_sec - before.ru_utime.tv_sec) * 1e6 + (after.ru_utime.tv_usec - before.ru_utime.tv_usec) +
                (after.ru_stime.tv_sec - before.ru_stime.tv_sec) * 1e6 + (after.ru_stime.tv_usec - before.ru_stime.tv_usec);
    printf("segments %d: sent %ld datagrams of %d bytes, sender CPU %.2f us per datagram\n", segments, sent, SIZE, us / sent);
    stop = 1;
    pthread_join(thread, NULL);
    return 0;
}
