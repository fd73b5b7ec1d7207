package bpf_test

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// testRun is how BPF_PROG_TEST_RUN lays out an XDP frame (net/bpf/test_run.c):
// a first (linear) buffer of a page less XDP_PACKET_HEADROOM and the
// cache-aligned struct skb_shared_info, then up to MAX_SKB_FRAGS
// page-sized fragments that only the xdp.frags variant sees. The plain
// variant of a larger frame sees its first buffer only.
type testRun struct {
	First int // bytes in the first buffer
	Max   int // largest frame the kernel accepts
}

// Fixed kernel constants: XDP_PACKET_HEADROOM and SMP_CACHE_BYTES (64 on
// every architecture we build for).
const (
	xdpPacketHeadroom = 256
	smpCacheBytes     = 64
	// minFrame is the shortest frame BPF_PROG_TEST_RUN accepts (ETH_HLEN).
	minFrame = 14
)

var testRunLayout = sync.OnceValues(func() (testRun, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return testRun{}, fmt.Errorf("reading kernel BTF: %w", err)
	}
	var shinfo *btf.Struct
	if err := spec.TypeByName("skb_shared_info", &shinfo); err != nil {
		return testRun{}, fmt.Errorf("struct skb_shared_info in kernel BTF: %w", err)
	}
	frags := -1
	for _, m := range shinfo.Members {
		if a, ok := m.Type.(*btf.Array); ok && m.Name == "frags" {
			frags = int(a.Nelems)
		}
	}
	if frags < 0 {
		return testRun{}, errors.New("struct skb_shared_info has no frags array in kernel BTF")
	}
	page := os.Getpagesize()
	tail := (int(shinfo.Size) + smpCacheBytes - 1) &^ (smpCacheBytes - 1)
	first := page - xdpPacketHeadroom - tail
	return testRun{First: first, Max: first + frags*page}, nil
})

// testRunLayoutOf returns the layout or fails tb.
func testRunLayoutOf(tb testing.TB) testRun {
	tb.Helper()
	l, err := testRunLayout()
	if err != nil {
		tb.Fatal(err)
	}
	return l
}
