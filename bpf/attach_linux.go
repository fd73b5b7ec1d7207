package bpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Attachment is the program attached to one interface through a bpf_link
// (if the process dies, the kernel detaches it) or, on kernels without XDP
// bpf_link, through netlink.
type Attachment struct {
	link    link.Link          // bpf_link, or
	nl      *netlinkAttachment // netlink attachment
	Mode    Mode               // the mode in use: native, generic or offload
	Variant Variant            // the program variant attached
	// NativeErr is why native mode failed when ModeAuto fell back to generic.
	NativeErr error
}

// Close releases the attachment: the program is detached unless it was
// pinned (then it stays attached and keeps counting). It is idempotent.
func (a *Attachment) Close() error {
	switch {
	case a == nil:
		return nil
	case a.link != nil:
		err := a.link.Close()
		a.link = nil
		return err
	case a.nl != nil:
		var err error
		if a.nl.pinned == "" {
			err = a.nl.detach()
		}
		a.nl = nil
		return err
	}
	return nil
}

// AttachError is a failed attach in one mode; Err wraps the errno.
type AttachError struct {
	Mode    Mode
	Variant Variant
	Err     error
	// Fallback holds the native error when ModeAuto also failed generic.
	Fallback *AttachError
}

func (e *AttachError) Error() string {
	msg := fmt.Sprintf("attaching %s program in %s mode: %v", e.Variant, e.Mode, e.Err)
	if e.Fallback != nil {
		msg = e.Fallback.Error() + "; then " + msg
	}
	return msg
}

func (e *AttachError) Unwrap() error { return e.Err }

var modeFlags = map[Mode]link.XDPAttachFlags{
	ModeNative:  link.XDPDriverMode,
	ModeGeneric: link.XDPGenericMode,
	ModeOffload: link.XDPOffloadMode,
}

// Attach attaches the program to the interface with index ifindex (in the
// calling thread's network namespace). ModeAuto tries native, then
// generic. The plain variant is used unless the instance was loaded with
// Frags; if the kernel refuses it with ERANGE (an MTU larger than a page
// allows), the xdp.frags variant is loaded and tried instead.
func (c *Counters) Attach(ifindex int, mode Mode) (*Attachment, error) {
	if mode != ModeAuto {
		return c.attachMode(ifindex, mode)
	}
	a, nativeErr := c.attachMode(ifindex, ModeNative)
	if nativeErr == nil {
		return a, nil
	}
	a, err := c.attachMode(ifindex, ModeGeneric)
	if err == nil {
		a.NativeErr = nativeErr
		return a, nil
	}
	var ae *AttachError
	if errors.As(err, &ae) && errors.As(nativeErr, new(*AttachError)) {
		var ne *AttachError
		errors.As(nativeErr, &ne)
		ae.Fallback = ne
	}
	return nil, err
}

func (c *Counters) attachMode(ifindex int, mode Mode) (*Attachment, error) {
	flags, ok := modeFlags[mode]
	if !ok {
		return nil, fmt.Errorf("invalid attach mode %v", mode)
	}
	variant := c.variant
	for {
		prog, err := c.Program(variant)
		if err != nil {
			return nil, &AttachError{Mode: mode, Variant: variant, Err: err}
		}
		a := &Attachment{Mode: mode, Variant: variant}
		if c.netlink {
			a.nl, err = attachNetlink(prog, ifindex, mode)
		} else {
			a.link, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: flags})
		}
		if err == nil {
			return a, nil
		}
		if errors.Is(err, unix.ERANGE) && variant == Plain && c.fragsOK {
			variant = Frags
			continue
		}
		return nil, &AttachError{Mode: mode, Variant: variant, Err: err}
	}
}
