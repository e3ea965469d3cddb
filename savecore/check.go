package savecore

import (
	"errors"
	"time"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/vmcore"
)

// Waiting describes a dump that waits on a partition to be saved.
type Waiting struct {
	Crashed time.Time        // crash time, in Options.Location
	Utsname diskdump.Utsname // host, release and machine of the crashed kernel
	Status  diskdump.Status
	// Written is what the kernel wrote on the partition, in bytes:
	// written_blocks × block_size.
	Written int64
	// Estimate is about the size of the vmcore a save would write, in the
	// format Options.Format asks for.
	Estimate int64
}

// CheckResult is what Check found on one device.
type CheckResult struct {
	Device string   // Input.Name
	Dump   *Waiting // the dump found; nil when there is none or Err is set
	Err    error    // the device could not be opened or its dump not read
}

// Check reads the dump header and bitmaps of each input and reports the
// dumps waiting, in input order, without saving, erasing or writing
// anything (savecore --check). It uses Options.Location and Options.Format
// only.
func Check(inputs []Input, opt Options) []CheckResult {
	out := make([]CheckResult, len(inputs))
	vf := vmcore.FormatAuto
	if opt.Format != "" {
		if f, err := vmcore.ParseFormat(opt.Format); err == nil {
			vf = f
		}
	}
	for i, in := range inputs {
		r := &out[i]
		r.Device = in.Name
		if in.Err != nil {
			r.Err = in.Err
			continue
		}
		if isFlattenedInput(in.Dev) { // a kdump raw target (flattened.go)
			r.Dump, r.Err = checkFlattened(in, opt)
			continue
		}
		p, err := diskdump.OpenPartition(in.Dev, in.Dev.Size())
		if errors.Is(err, diskdump.ErrNoDump) {
			continue
		}
		if err != nil {
			r.Err = err
			continue
		}
		h := p.Header()
		r.Dump = &Waiting{
			Crashed:  h.Time().In(loc(opt.Location)),
			Utsname:  h.Utsname,
			Status:   h.Status,
			Written:  int64(h.WrittenBlocks) * int64(h.BlockSize),
			Estimate: vmcore.EstimateSize(p, vmcore.Options{Format: vf}),
		}
	}
	return out
}

// checkFlattened describes the flattened dump of a kdump raw target: its
// KDUMP header, when the stream carries one, and the size of the vmcore
// it rebuilds into.
func checkFlattened(in Input, opt Options) (*Waiting, error) {
	sum, err := vmcore.ScanFlattened(in.Dev, in.Dev.Size())
	if err != nil {
		return nil, err
	}
	w := &Waiting{Written: sum.StreamSize, Estimate: sum.DataBytes}
	if h := sum.Header; h != nil {
		w.Crashed, w.Utsname, w.Status = h.Time().In(loc(opt.Location)), h.Utsname, h.Status
	}
	return w, nil
}
