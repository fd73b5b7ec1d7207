package bpf

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Attachment is one program of an instance attached to one hook of one
// interface, whatever the hook: XDP (bpf_link, or netlink before 5.9),
// tcx, or a legacy clsact filter. Callers see one type; what differs by
// hook is behind attacher.
type Attachment struct {
	Hook    Hook      // the hook really in use
	Dir     Direction // ingress or egress
	Ifindex int
	Variant Variant // the program variant attached
	// NativeErr is why native mode failed when ModeAuto fell back to generic.
	NativeErr error
	// Replaced is the id of a program of ours that a dead instance had
	// left attached (netlink XDP, legacy filters) and that was replaced.
	Replaced ebpf.ProgramID

	impl attacher
}

// attacher is how one kind of attachment is held, checked and released.
type attacher interface {
	programID() ebpf.ProgramID
	// check returns nil while the program is attached where it was put,
	// else a *DetachedError.
	check(a *Attachment) error
	// pin keeps the program attached past the process, in dir.
	pin(dir string) error
	// release lets go of the attachment: it detaches the program unless
	// it is pinned.
	release() error
	// detach detaches the program, pinned or not, and removes its pin.
	detach() error
}

// Target is where to attach an instance's program.
type Target struct {
	Ifindex int
	Dir     Direction
	// XDP (ingress only) attaches the XDP program in Mode; otherwise the
	// TC program is attached with tcx, or as a clsact filter where tcx is
	// not available (Linux < 6.6).
	XDP  bool
	Mode Mode
}

// ProgramID returns the id of the attached program.
func (a *Attachment) ProgramID() ebpf.ProgramID { return a.impl.programID() }

// Check returns nil while the program is still attached where it was
// put. Nothing tells a process when its XDP or TC program is detached from
// outside (bpftool, ip, tc, another tool): callers check at intervals.
// The error is a *DetachedError naming what is attached there now.
func (a *Attachment) Check() error { return a.impl.check(a) }

// Pin keeps the program attached when the process exits (its link, or
// for netlink and legacy filter attachments its program, pinned in dir),
// until Detach or RemovePins.
func (a *Attachment) Pin(dir string) error { return a.impl.pin(dir) }

// Close releases the attachment: the program is detached unless it was
// pinned (then it stays attached and keeps counting). It is idempotent.
func (a *Attachment) Close() error {
	if a == nil || a.impl == nil {
		return nil
	}
	err := a.impl.release()
	a.impl = nil
	return err
}

// Detach detaches the program, removes its pin, if any, and releases the
// attachment. It is idempotent.
func (a *Attachment) Detach() error {
	if a == nil || a.impl == nil {
		return nil
	}
	err := a.impl.detach()
	a.impl = nil
	return err
}

// ProgramRef names a program found at a hook.
type ProgramRef struct {
	ID   ebpf.ProgramID
	Name string // "" where it cannot be read (needs CAP_SYS_ADMIN)
}

func (r ProgramRef) String() string {
	if r.Name == "" {
		return fmt.Sprintf("id %d", r.ID)
	}
	return fmt.Sprintf("id %d, name %q", r.ID, r.Name)
}

// ProgramRefOf returns the reference of the program with id.
func ProgramRefOf(id ebpf.ProgramID) ProgramRef { return ProgramRef{ID: id, Name: programName(id)} }

// programName returns a program's name, "" if it cannot be read.
func programName(id ebpf.ProgramID) string {
	prog, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return ""
	}
	defer prog.Close()
	info, err := prog.Info()
	if err != nil {
		return ""
	}
	return info.Name
}

// DetachedError says that an attachment's program is no longer attached
// where it was put, and what is there now.
type DetachedError struct {
	Hook Hook
	Dir  Direction
	Prog ebpf.ProgramID
	// Now is what is attached at the hook now (other programs for tcx
	// and legacy filters); empty if nothing.
	Now []ProgramRef
}

func (e *DetachedError) Error() string {
	msg := fmt.Sprintf("our %s program at %s (id %d) was detached from outside", e.Dir, e.Hook, e.Prog)
	if len(e.Now) == 0 {
		return msg + "; nothing is attached there now"
	}
	refs := make([]string, len(e.Now))
	for i, r := range e.Now {
		refs[i] = r.String()
	}
	return msg + "; attached there now: " + strings.Join(refs, "; ")
}

// AttachError is a failed attach at one hook; Err wraps the errno.
type AttachError struct {
	Hook    Hook
	Dir     Direction
	Variant Variant
	Err     error
	// Fallback holds the native error when ModeAuto also failed generic.
	Fallback *AttachError
}

func (e *AttachError) Error() string {
	var how string
	switch e.Hook {
	case HookTCX:
		how = "with tcx"
	case HookTC:
		how = "as a clsact filter"
	default:
		how = "in " + strings.TrimPrefix(e.Hook.String(), "xdp_") + " mode"
	}
	msg := fmt.Sprintf("attaching the %s program at %s %s: %v", e.Variant, e.Dir, how, e.Err)
	if e.Fallback != nil {
		msg = e.Fallback.Error() + "; then " + msg
	}
	return msg
}

func (e *AttachError) Unwrap() error { return e.Err }

// Attach attaches the instance's program at t (in the calling thread's
// network namespace). XDP: ModeAuto tries native, then generic; the plain
// variant is used unless the instance was loaded with Frags, and if the
// kernel refuses it with ERANGE (an MTU larger than a page allows), the
// xdp.frags variant is loaded and tried instead. TC: tcx at the head of
// the hook's programs, or a clsact filter where tcx is not available.
func (c *Counters) Attach(t Target) (*Attachment, error) {
	if !t.XDP {
		return c.attachTC(t)
	}
	if t.Dir != Ingress {
		return nil, fmt.Errorf("XDP sees ingress only; %v needs TC", t.Dir)
	}
	if t.Mode != ModeAuto {
		return c.attachXDP(t.Ifindex, t.Mode)
	}
	a, nativeErr := c.attachXDP(t.Ifindex, ModeNative)
	if nativeErr == nil {
		return a, nil
	}
	a, err := c.attachXDP(t.Ifindex, ModeGeneric)
	if err == nil {
		a.NativeErr = nativeErr
		return a, nil
	}
	var ae, ne *AttachError
	if errors.As(err, &ae) && errors.As(nativeErr, &ne) {
		ae.Fallback = ne
	}
	return nil, err
}

var modeFlags = map[Mode]link.XDPAttachFlags{
	ModeNative:  link.XDPDriverMode,
	ModeGeneric: link.XDPGenericMode,
	ModeOffload: link.XDPOffloadMode,
}

func (c *Counters) attachXDP(ifindex int, mode Mode) (*Attachment, error) {
	flags, ok := modeFlags[mode]
	if !ok {
		return nil, fmt.Errorf("invalid attach mode %v", mode)
	}
	hook := xdpHooks[mode]
	variant := c.variant
	for {
		prog, err := c.Program(variant)
		if err != nil {
			return nil, &AttachError{Hook: hook, Variant: variant, Err: err}
		}
		a := &Attachment{Hook: hook, Dir: Ingress, Ifindex: ifindex, Variant: variant}
		if c.loader.netlink {
			var nl *netlinkXDP
			nl, a.Replaced, err = attachNetlink(prog, ifindex, mode)
			if err == nil {
				a.impl = nl
			}
		} else {
			var l link.Link
			l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: flags})
			if err == nil {
				a.impl = &bpfLink{link: l}
			}
		}
		if err == nil {
			return a, nil
		}
		if errors.Is(err, unix.ERANGE) && variant == Plain && c.fragsOK {
			variant = Frags
			continue
		}
		return nil, &AttachError{Hook: hook, Variant: variant, Err: err}
	}
}

// bpfLink is an attachment through a bpf_link (XDP on 5.9+, tcx): the
// kernel detaches it when the last reference goes - the process dies, even
// by SIGKILL - unless it is pinned.
type bpfLink struct {
	link link.Link
}

func (b *bpfLink) programID() ebpf.ProgramID {
	info, err := b.link.Info()
	if err != nil {
		return 0
	}
	return info.Program
}

// check reads the link's interface: a link detached from outside (bpftool
// link detach, or its pin removed and detached by another process) is
// still open here but reports ifindex 0.
func (b *bpfLink) check(a *Attachment) error {
	info, err := b.link.Info()
	if err != nil {
		return fmt.Errorf("reading the %s link: %w", a.Hook, err)
	}
	var ifindex uint32
	if x := info.XDP(); x != nil {
		ifindex = x.Ifindex
	} else if t := info.TCX(); t != nil {
		ifindex = t.Ifindex
	}
	if ifindex != 0 {
		return nil
	}
	return &DetachedError{Hook: a.Hook, Dir: a.Dir, Prog: info.Program, Now: occupants(a)}
}

func (b *bpfLink) pin(dir string) error {
	if err := b.link.Pin(pinPath(dir, pinLink)); err != nil {
		return fmt.Errorf("pinning the link: %w", err)
	}
	return nil
}

func (b *bpfLink) release() error { return b.link.Close() }

func (b *bpfLink) detach() error {
	var errs []error
	if err := b.link.Detach(); err != nil && !errors.Is(err, ebpf.ErrNotSupported) {
		errs = append(errs, err)
	}
	return errors.Join(append(errs, b.link.Unpin(), b.link.Close())...)
}

// occupants returns what is attached at a's hook now, but a's program.
func occupants(a *Attachment) []ProgramRef {
	var ids []ebpf.ProgramID
	switch {
	case a.Hook.IsXDP():
		if id := xdpProgram(a.Ifindex); id != 0 {
			ids = append(ids, id)
		}
	case a.Hook == HookTCX:
		ids = tcxPrograms(a.Ifindex, a.Dir)
	case a.Hook == HookTC:
		ids = filterPrograms(a.Ifindex, a.Dir)
	}
	var refs []ProgramRef
	for _, id := range ids {
		if a.impl == nil || id != a.impl.programID() {
			refs = append(refs, ProgramRefOf(id))
		}
	}
	return refs
}
