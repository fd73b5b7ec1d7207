//go:build ignore

// xdp_udp_ports: count UDP packets and bytes per port at XDP or TC.
//
// One parse path, three entry points: the XDP programs (plain and
// multi-buffer) and the TC program (tcx or a legacy clsact filter, ingress
// or egress). They differ only in where the frame starts, its length and
// how many segments one buffer stands for; classify() is shared. The
// programs never write to the packet and never change a verdict: XDP_PASS,
// and TC_ACT_UNSPEC (= TCX_NEXT) at TC. Each frame is put in exactly one
// class by classify() (the rules are in the README, "Classification
// rules") and counted in exactly one slot of the per-CPU counter table
// (two when source ports are counted).
//
// Counter table layout: one BPF_F_MMAPABLE array, one block of
// slots_per_cpu slots per possible CPU, index = cpu * slots_per_cpu + slot.
// Within a block:
//
//   [SLOT_FRAGMENT, SLOT_OTHER, SLOT_MALFORMED, reserved]  class slots
//   [SLOT_PORTS, SLOT_PORTS + port_slots)                  destination ports
//   [src_base, src_base + port_slots)                      source ports (if counted)
//
// port_slots is 65536 (dense: slot = port) or, with an allow-list, the
// number of listed ports plus one "other" slot (slot = port_slot[port]).
// Totals such as packets and udp_packets are derived in user space, so a
// packet touches one slot (two with source counting) and nothing else.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char __license[] SEC("license") = "Dual MIT/GPL";

// Limits of the parser; kept in sync with Go by TestConstantsMatchC.
enum xdp_udp_ports_limits {
	MAX_VLAN_TAGS = 2,
	MAX_IPV6_EXT_HEADERS = 6,
	DENSE_PORT_SLOTS = 65536,
	// At TC, headers not in the linear part of the packet are pulled in,
	// up to this many bytes from the frame start.
	TC_PULL_BYTES = 512,
};

// Where a frame starts, by link type: set at load time (frame_start).
enum xdp_udp_ports_frame {
	FRAME_ETHERNET = 0, // Ethernet header (Ethernet, loopback)
	FRAME_IP = 1,       // IP header, version in the first nibble (ARPHRD_NONE: TUN, WireGuard)
};

// Frame classes. The non-UDP classes double as their counter slot.
enum xdp_udp_ports_class {
	CLASS_FRAGMENT = 0,
	CLASS_OTHER = 1,
	CLASS_MALFORMED = 2,
	CLASS_UDP = 3,
	SLOT_PORTS = 4, // first destination port slot
};

struct counter {
	__u64 packets;
	__u64 bytes;
};

// Keep the enums in BTF so bpf2go generates them for Go.
const enum xdp_udp_ports_limits *unused_limits __attribute__((unused));
const enum xdp_udp_ports_class *unused_class __attribute__((unused));
const enum xdp_udp_ports_frame *unused_frame __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct counter);
	__uint(max_entries, 1); // set by the loader: CPUs * slots_per_cpu
} counters SEC(".maps");

// Load-time configuration, set by the loader before the program is loaded.
volatile const __u32 slots_per_cpu = SLOT_PORTS + DENSE_PORT_SLOTS;
volatile const __u32 src_base = 0;
volatile const __u8 count_source = 0;
volatile const __u8 use_port_slot = 0;
volatile const __u8 frame_start = FRAME_ETHERNET;

// Allow-list mode: port -> slot (0..n-1 listed, n = "other"). Shared by all
// CPUs and only read by the program.
__u16 port_slot[DENSE_PORT_SLOTS];

// What classify() found besides the class: the ports of a UDP datagram,
// and the header bytes every GSO segment of the packet repeats (hdr: link
// + IP + extension headers + the L4 header: UDP 8, TCP data offset x 4,
// others 0; 0 when no IP header was found). Only the TC program uses hdr:
// in the XDP programs its computation is dead code the compiler removes.
struct parsed {
	__u16 dst;
	__u16 src;
	__u32 hdr;
};

#define VLAN_HLEN 4
#define IPV4_MIN_HLEN 20
#define IPV6_HLEN 40
#define UDP_HLEN 8
#define TCP_MIN_HLEN 20
#define IPV4_FRAG_OFFSET 0x1fff
#define IPV6_FRAG_OFFSET 0xfff8

#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_AUTH 51
#define NEXTHDR_DEST 60

// Headers are found by a scalar offset from the frame start, masked to 16
// bits before each use (a no-op: no header lies past 64 KiB) so that every
// path through the parser reaches a header with the same verifier state and
// the verifier prunes instead of exploring each combination of headers.
#define OFF_MASK 0xffff

// has reports whether len bytes at p are in the frame's linear buffer.
static __always_inline int has(void *p, __u32 len, void *end)
{
	return p + len <= end;
}

// at returns a pointer to the header at off.
static __always_inline __u8 *at(void *data, __u32 off)
{
	return data + (off & OFF_MASK);
}

// l4_header records the header bytes up to the end of the L4 header that
// starts at off.
static __always_inline void l4_header(void *data, void *end, __u32 off, __u8 proto, struct parsed *p)
{
	__u8 *tcp = at(data, off);

	p->hdr = off;
	if (proto == IPPROTO_UDP)
		p->hdr = off + UDP_HLEN;
	else if (proto == IPPROTO_TCP && has(tcp, TCP_MIN_HLEN, end))
		p->hdr = off + (tcp[12] >> 4) * 4;
}

static __always_inline int parse_udp(void *data, void *end, __u32 off, struct parsed *p)
{
	__u8 *udp = at(data, off);

	if (!has(udp, UDP_HLEN, end))
		return CLASS_MALFORMED;
	p->src = bpf_ntohs(*(__u16 *)&udp[0]);
	p->dst = bpf_ntohs(*(__u16 *)&udp[2]);
	return CLASS_UDP;
}

static __always_inline int parse_ipv4(void *data, void *end, __u32 off, struct parsed *p)
{
	__u8 *ip = at(data, off);
	__u32 hlen;

	if (!has(ip, IPV4_MIN_HLEN, end))
		return CLASS_MALFORMED;
	if ((ip[0] >> 4) != 4)
		return CLASS_MALFORMED;
	hlen = (ip[0] & 0xf) * 4;
	if (hlen < IPV4_MIN_HLEN || !has(ip, hlen, end))
		return CLASS_MALFORMED;
	l4_header(data, end, off + hlen, ip[9], p);
	if (ip[9] != IPPROTO_UDP)
		return CLASS_OTHER;
	if (*(__u16 *)&ip[6] & bpf_htons(IPV4_FRAG_OFFSET))
		return CLASS_FRAGMENT;
	return parse_udp(data, end, off + hlen, p);
}

static __always_inline int parse_ipv6(void *data, void *end, __u32 off, struct parsed *p)
{
	__u8 *hdr = at(data, off);
	__u8 next;
	__u32 len;

	if (!has(hdr, IPV6_HLEN, end))
		return CLASS_MALFORMED;
	next = hdr[6];
	off += IPV6_HLEN;

#pragma unroll
	for (int i = 0; i < MAX_IPV6_EXT_HEADERS; i++) {
		switch (next) {
		case NEXTHDR_HOP:
		case NEXTHDR_ROUTING:
		case NEXTHDR_DEST:
			hdr = at(data, off);
			if (!has(hdr, 2, end))
				return CLASS_MALFORMED;
			len = ((__u32)hdr[1] + 1) * 8;
			break;
		case NEXTHDR_AUTH:
			hdr = at(data, off);
			if (!has(hdr, 2, end))
				return CLASS_MALFORMED;
			len = ((__u32)hdr[1] + 2) * 4;
			break;
		case NEXTHDR_FRAGMENT:
			hdr = at(data, off);
			if (!has(hdr, 8, end))
				return CLASS_MALFORMED;
			if (*(__u16 *)&hdr[2] & bpf_htons(IPV6_FRAG_OFFSET))
				return hdr[0] == IPPROTO_UDP ? CLASS_FRAGMENT : CLASS_OTHER;
			len = 8;
			break;
		default:
			goto done;
		}
		next = hdr[0];
		off = (off + len) & OFF_MASK;
	}
done:
	l4_header(data, end, off, next, p);
	if (next != IPPROTO_UDP)
		return CLASS_OTHER;
	return parse_udp(data, end, off, p);
}

// parse_ethernet applies the Ethernet and VLAN rules. meta_tags is the
// number of VLAN tags the kernel holds in packet metadata rather than in
// the frame (0 or 1, at TC only): they count first against MAX_VLAN_TAGS.
static __always_inline int parse_ethernet(void *data, void *end, __u32 meta_tags, struct parsed *p)
{
	__u32 off = ETH_HLEN;
	__u8 *hdr = data;
	__u16 proto;

	if (!has(hdr, ETH_HLEN, end))
		return CLASS_MALFORMED;
	proto = *(__u16 *)&hdr[12];

#pragma unroll
	for (int i = 0; i < MAX_VLAN_TAGS; i++) {
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if (i + meta_tags >= MAX_VLAN_TAGS)
			break;
		hdr = at(data, off);
		if (!has(hdr, VLAN_HLEN, end))
			return CLASS_MALFORMED;
		proto = *(__u16 *)&hdr[2];
		off += VLAN_HLEN;
	}

	if (proto == bpf_htons(ETH_P_IP))
		return parse_ipv4(data, end, off, p);
	if (proto == bpf_htons(ETH_P_IPV6))
		return parse_ipv6(data, end, off, p);
	return CLASS_OTHER; // incl. more than MAX_VLAN_TAGS tags
}

// classify puts a frame in exactly one class; for CLASS_UDP it fills the
// ports. Where the frame starts is a load-time constant: on Ethernet links
// the IP-start branch is dead code the verifier removes.
static __always_inline int classify(void *data, void *end, __u32 meta_tags, struct parsed *p)
{
	__u8 *ip = data;

	if (frame_start == FRAME_ETHERNET)
		return parse_ethernet(data, end, meta_tags, p);
	if (!has(ip, 1, end))
		return CLASS_MALFORMED;
	if ((ip[0] >> 4) == 4)
		return parse_ipv4(data, end, 0, p);
	if ((ip[0] >> 4) == 6)
		return parse_ipv6(data, end, 0, p);
	return CLASS_MALFORMED;
}

static __always_inline void add(__u32 index, __u64 packets, __u64 bytes)
{
	struct counter *c = bpf_map_lookup_elem(&counters, &index);

	if (c) {
		c->packets += packets;
		c->bytes += bytes;
	}
}

static __always_inline __u32 slot_of(__u16 port)
{
	return use_port_slot ? port_slot[port] : port;
}

// count adds packets and bytes of one class (for UDP: its ports).
static __always_inline void count(int class, struct parsed *p, __u64 packets, __u64 bytes)
{
	__u32 base = bpf_get_smp_processor_id() * slots_per_cpu;

	if (class != CLASS_UDP) {
		add(base + class, packets, bytes);
		return;
	}
	add(base + SLOT_PORTS + slot_of(p->dst), packets, bytes);
	if (count_source)
		add(base + src_base + slot_of(p->src), packets, bytes);
}

static __always_inline int count_xdp(struct xdp_md *ctx, __u64 bytes)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct parsed p = {};

	count(classify(data, end, 0, &p), &p, 1, bytes);
	return XDP_PASS;
}

// Plain variant: the frame is one buffer, its length is data_end - data.
SEC("xdp")
int xdp_udp_ports(struct xdp_md *ctx)
{
	return count_xdp(ctx, (__u64)((long)ctx->data_end - (long)ctx->data));
}

// Multi-buffer variant: the length includes every fragment; headers are
// still read from the first (linear) buffer.
SEC("xdp.frags")
int xdp_udp_frags(struct xdp_md *ctx)
{
	return count_xdp(ctx, bpf_xdp_get_buff_len(ctx));
}

// tc_classify_pulled is classify() for the TC program's rare second look,
// after pulling headers into the linear part. A global function: the
// verifier checks it once, on its own, rather than the whole parser again
// on every path that reaches the pull; the common path does not call it.
__attribute__((noinline)) int tc_classify_pulled(struct __sk_buff *skb, __u32 meta_tags, struct parsed *p)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;

	if (!p)
		return CLASS_MALFORMED;
	return classify(data, end, meta_tags, p);
}

// TC program, for tcx and legacy clsact filters, ingress and egress. The
// frame starts at the MAC header (the kernel pushes it back for ingress
// programs) or, on links without one, at the IP header. skb->len counts
// every buffer. A VLAN tag in metadata (vlan_present: moved there by the
// kernel before TC ingress, or handed down by a VLAN device on egress)
// counts as the first tag and adds its 4 bytes. One GSO/GRO packet counts
// as its segments, each with its own copy of the headers.
// vlan_tags is the number of VLAN tags in packet metadata (0 or 1). It is
// read anew where needed rather than kept in a register across the
// parser: a value live through it would keep the verifier from merging
// the parser's paths.
static __always_inline __u32 vlan_tags(struct __sk_buff *skb)
{
	return *(volatile __u32 *)&skb->vlan_present ? 1 : 0;
}

SEC("tc")
int tc_udp_ports(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct parsed p = {};
	__u64 segs = 1, bytes;
	__u32 gso_segs, gso_size, hdr;
	__u32 meta_tags;
	int class = classify(data, end, vlan_tags(skb), &p);

	if (class == CLASS_MALFORMED && skb->len > (__u32)(end - data)) {
		// Headers beyond the linear part: pull them in (the packet's
		// content does not change) and look again.
		bpf_skb_pull_data(skb, skb->len < TC_PULL_BYTES ? skb->len : TC_PULL_BYTES);
		p = (struct parsed){};
		class = tc_classify_pulled(skb, vlan_tags(skb), &p);
	}
	meta_tags = vlan_tags(skb);

	// Lengths as on the wire, with a tag held in metadata in place.
	bytes = skb->len + meta_tags * VLAN_HLEN;
	gso_segs = skb->gso_segs;
	if (gso_segs != 1) {
		gso_size = skb->gso_size;
		if (gso_segs || gso_size) {
			hdr = p.hdr;
			if (hdr)
				hdr += meta_tags * VLAN_HLEN;
			if (gso_segs)
				segs = gso_segs;
			else if (bytes > hdr)
				segs = (bytes - hdr + gso_size - 1) / gso_size;
			bytes += (segs - 1) * hdr;
		}
	}
	count(class, &p, segs, bytes);
	return TC_ACT_UNSPEC;
}
