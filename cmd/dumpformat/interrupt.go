package main

import (
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/dumpkit/dumpkit/blockdev"
)

// interruptible passes writes to the device until SIGINT or SIGTERM
// arrives; then every write fails, so that the format stops at the next
// piece and dumpformat can say what state it left.
type interruptible struct {
	dev  *blockdev.Device
	sigs chan os.Signal
	got  atomic.Value // syscall.Signal
	done chan struct{}
}

func newInterruptible(dev *blockdev.Device) *interruptible {
	iw := &interruptible{dev: dev, sigs: make(chan os.Signal, 1), done: make(chan struct{})}
	signal.Notify(iw.sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case s := <-iw.sigs:
			iw.got.Store(s.(syscall.Signal))
		case <-iw.done:
		}
	}()
	return iw
}

// stop restores the default signal handling; calling it again does nothing.
func (iw *interruptible) stop() {
	select {
	case <-iw.done:
	default:
		signal.Stop(iw.sigs)
		close(iw.done)
	}
}

// signal returns the signal that interrupted the format, or nil.
func (iw *interruptible) signal() *syscall.Signal {
	if s, ok := iw.got.Load().(syscall.Signal); ok {
		return &s
	}
	return nil
}

// WriteAt fails once a signal arrived.
func (iw *interruptible) WriteAt(p []byte, off int64) (int, error) {
	if iw.signal() != nil {
		return 0, errInterrupted
	}
	return iw.dev.WriteAt(p, off)
}

// Flush lets the formatter's ordering flush through.
func (iw *interruptible) Flush() error { return iw.dev.Flush() }

var errInterrupted = fmt.Errorf("interrupted")

// interruptedError is a format stopped by a signal; run exits 128+sig.
type interruptedError struct {
	sig syscall.Signal
	msg string
}

func (e *interruptedError) Error() string { return e.msg }

// interrupted says, in one line, what an interrupted format left: an
// initial format clears block 0 first and writes it last, so the device
// needs an initial format again; a normal format leaves block 0 alone and
// the device needs a normal format.
func (c *command) interrupted(name string, sig *syscall.Signal) error {
	state := "some sampled blocks may be unwritten: it needs a format (run dumpformat " + name + " again)"
	if c.o.initial {
		state = "block 0 stays cleared until the end, so it needs an initial format (run dumpformat -f " + name + " again); dumpformat -c says 2"
	}
	return &interruptedError{sig: *sig, msg: fmt.Sprintf("%s: format interrupted by %v: %s", name, *sig, state)}
}
