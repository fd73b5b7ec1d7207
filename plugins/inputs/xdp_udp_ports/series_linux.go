//go:build linux

package xdp_udp_ports

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/cilium/ebpf"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
)

// seriesState is what one counting has emitted: per port role, which
// ports have series of their own (portSeries), and whether its summary
// series exists. With pin_path the roles' state is kept in a map pinned
// beside the counters, so that a restart that adopts the counters neither
// starts their series again with a 0 (which would look like a reset) nor
// gives seats to ports that were summed into "other".
type seriesState struct {
	roles   [2]*portSeries // by bpf.Role
	summary bool           // the summary series exists
	store   *ebpf.Map      // pinned state, nil without pin_path
}

func newSeriesState(maxPorts int) *seriesState {
	return &seriesState{roles: [2]*portSeries{newPortSeries(maxPorts), newPortSeries(maxPorts)}}
}

// stateSpec is the pinned map of a counting's series state: one entry per
// role.
var stateSpec = ebpf.MapSpec{Name: "xdp_udp_series", Type: ebpf.Array, KeySize: 4, ValueSize: seriesStateSize, MaxEntries: 2}

// pin creates the state map and pins it in dir.
func (s *seriesState) pin(dir string) error {
	m, err := ebpf.NewMap(&stateSpec)
	if err != nil {
		return fmt.Errorf("creating the series state map: %w", err)
	}
	if err := m.Pin(filepath.Join(dir, bpf.PinState)); err != nil {
		m.Close()
		return fmt.Errorf("pinning the series state map: %w", err)
	}
	s.store = m
	for r := range s.roles {
		if err := s.save(bpf.Role(r)); err != nil {
			return err
		}
	}
	return nil
}

// restoreSeries returns the series state pinned in dir with adopted
// counters; where none was stored, every port that has packets now (and
// the summary) is taken to have its series already.
func (p *XDPUDPPorts) restoreSeries(dir string, counters *bpf.Counters) *seriesState {
	s := &seriesState{summary: true}
	m, err := ebpf.LoadPinnedMap(filepath.Join(dir, bpf.PinState), nil)
	if err == nil {
		s.store = m
	} else {
		p.Log.Debugf("%s: no series state (%v): taking the series of every port with packets as existing", dir, err)
	}
	var snap bpf.Snapshot
	counters.Snapshot(&snap)
	for r := range s.roles {
		role := bpf.Role(r)
		if m != nil {
			buf := make([]byte, seriesStateSize)
			if err := m.Lookup(uint32(r), &buf); err == nil {
				if ps, err := restorePortSeries(p.settings.maxPorts, buf); err == nil {
					s.roles[r] = ps
					continue
				} else if !errors.Is(err, errNoSeriesState) {
					p.Log.Warnf("%s: series state of the %s role: %v", dir, role, err)
				}
			}
		}
		ports, other := roleCounts(&snap, role)
		s.roles[r] = adoptPortSeries(p.settings.maxPorts, ports, other)
		if err := s.save(role); err != nil {
			p.Log.Warnf("%s: %v", dir, err)
		}
	}
	return s
}

// roleCounts returns a snapshot's ports and "other" of one role.
func roleCounts(snap *bpf.Snapshot, r bpf.Role) ([]bpf.PortCount, bpf.Counter) {
	if r == bpf.Source {
		return snap.Source, snap.SourceOther
	}
	return snap.Destination, snap.DestinationOther
}

// save writes one role's state to the pinned map, if any.
func (s *seriesState) save(r bpf.Role) error {
	if s.store == nil {
		return nil
	}
	if err := s.store.Put(uint32(r), s.roles[r]); err != nil {
		return fmt.Errorf("saving the series state of the %s role: %w", r, err)
	}
	return nil
}

func (s *seriesState) close() {
	if s != nil && s.store != nil {
		s.store.Close()
		s.store = nil
	}
}
