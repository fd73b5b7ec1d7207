//go:build linux

package testnet

import "time"

// WaitStable calls count every 20 ms until it returns the same value twice
// in a row (every frame sent has been through the program), for at most a
// second. It reports whether the count settled.
func WaitStable(count func() uint64) bool {
	last := count()
	for range 50 {
		time.Sleep(20 * time.Millisecond)
		now := count()
		if now == last {
			return true
		}
		last = now
	}
	return false
}
