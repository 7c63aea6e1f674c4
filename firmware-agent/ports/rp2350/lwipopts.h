/*
 * lwipopts.h - lwIP configuration of the RP2350 agent firmware: NO_SYS with the cyw43 driver
 * in poll mode, IPv4 with DHCP and DNS, TCP sized for TLS records, and the altcp TLS layer
 * over mbedTLS with certificate verification REQUIRED (lwIP's default is optional, which
 * would accept any server), its random generator seeded from the TRNG with its health tests
 * on (entropy_rp2350.c), not from pico_rand.
 */
#ifndef FWA_RP2350_LWIPOPTS_H
#define FWA_RP2350_LWIPOPTS_H

#include <stddef.h>

#define NO_SYS 1
#define LWIP_SOCKET 0
#define LWIP_NETCONN 0
#define MEM_LIBC_MALLOC 1 /* poll mode: lwIP and mbedTLS share newlib's heap */
#define MEM_ALIGNMENT 4
#define MEM_SIZE 8000
#define MEMP_NUM_TCP_SEG 32
#define MEMP_NUM_ARP_QUEUE 10
#define PBUF_POOL_SIZE 24
#define LWIP_ARP 1
#define LWIP_ETHERNET 1
#define LWIP_ICMP 1
#define LWIP_RAW 0
#define TCP_MSS 1460
/* Strictly more than one 16 KiB TLS record in flight, or the receive window stalls. */
#define TCP_WND 32768
#define TCP_SND_BUF (8 * TCP_MSS)
#define TCP_SND_QUEUELEN ((4 * (TCP_SND_BUF) + (TCP_MSS - 1)) / (TCP_MSS))
#define LWIP_NETIF_STATUS_CALLBACK 1
#define LWIP_NETIF_LINK_CALLBACK 1
#define LWIP_NETIF_HOSTNAME 1
#define LWIP_NETIF_TX_SINGLE_PBUF 1
#define LWIP_CHKSUM_ALGORITHM 3
#define LWIP_IPV4 1
#define LWIP_IPV6 0
#define LWIP_TCP 1
#define LWIP_UDP 1
#define LWIP_DHCP 1
#define LWIP_DNS 1
#define LWIP_TCP_KEEPALIVE 1
#define DHCP_DOES_ARP_CHECK 0
#define LWIP_DHCP_DOES_ACD_CHECK 0
#define LWIP_SINGLE_NETIF 1
#define MEM_STATS 0
#define SYS_STATS 0
#define MEMP_STATS 0
#define LINK_STATS 0

/* TLS through mbedTLS. */
#define LWIP_ALTCP 1
#define LWIP_ALTCP_TLS 1
#define LWIP_ALTCP_TLS_MBEDTLS 1
#define ALTCP_MBEDTLS_AUTHMODE MBEDTLS_SSL_VERIFY_REQUIRED
#define ALTCP_MBEDTLS_USE_SESSION_CACHE 0
/*
 * The entropy function lwIP seeds mbedTLS's CTR_DRBG with (in place of mbedtls_entropy_func,
 * whose only source would be pico_rand): 0 on success, an mbedTLS error when the TRNG's health
 * tests keep failing.
 */
int fwa_rp2350_entropy(void *ctx, unsigned char *buf, size_t len);
#define ALTCP_MBEDTLS_RNG_FN fwa_rp2350_entropy

#endif
