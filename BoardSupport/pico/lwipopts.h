// lwIP configuration for TDOS on the Pico W: IPv4, UDP, DHCP, ARP, ICMP (ping);
// no TCP, no DNS, no sockets. NO_SYS: lwIP runs inside cyw43_arch_poll() on the
// main loop (pico_cyw43_arch_lwip_poll), raw API only.
#ifndef TDOS_LWIPOPTS_H
#define TDOS_LWIPOPTS_H

#define NO_SYS 1
#define LWIP_SOCKET 0
#define LWIP_NETCONN 0

// Memory: lwIP's own static heap and pools, not malloc, so the network's RAM is
// counted in the image's static RAM and never grows.
#define MEM_LIBC_MALLOC 0
#define MEM_ALIGNMENT 4
// Outgoing datagrams (PBUF_RAM, <= 1200 B + headers; the CYW43 driver copies
// each one out at once) and DHCP's messages.
#define MEM_SIZE 6000
// Incoming frames: one pbuf holds a whole 1500-byte Ethernet frame, so a TDOS
// datagram is never a chain. 10 x 1.5 KB covers a burst while the main loop
// drains the ring (the ring copies each datagram out immediately).
#define PBUF_POOL_SIZE 10
#define PBUF_POOL_BUFSIZE 1540
#define MEMP_NUM_UDP_PCB 4  // TDOS's socket, DHCP, spare
#define MEMP_NUM_ARP_QUEUE 8
#define MEMP_NUM_TCP_PCB 0
#define MEMP_NUM_TCP_PCB_LISTEN 0
#define MEMP_NUM_TCP_SEG 0

#define LWIP_IPV4 1
#define LWIP_IPV6 0
#define LWIP_ARP 1
#define LWIP_ETHERNET 1
#define LWIP_ICMP 1
#define LWIP_RAW 0
#define LWIP_UDP 1
#define LWIP_TCP 0
#define LWIP_DNS 0
#define LWIP_DHCP 1
#define LWIP_IGMP 0
#define IP_REASSEMBLY 0  // a TDOS frame fits one datagram (PROTOCOL.md: never fragments)
#define IP_FRAG 0
#define DHCP_DOES_ARP_CHECK 0
#define LWIP_DHCP_DOES_ACD_CHECK 0

#define LWIP_NETIF_STATUS_CALLBACK 1
#define LWIP_NETIF_LINK_CALLBACK 1
#define LWIP_NETIF_HOSTNAME 1
#define LWIP_NETIF_TX_SINGLE_PBUF 1
#define LWIP_CHKSUM_ALGORITHM 3

#define LWIP_STATS 0
#define MEM_STATS 0
#define SYS_STATS 0
#define MEMP_STATS 0
#define LINK_STATS 0
#define LWIP_DEBUG 0

#endif
