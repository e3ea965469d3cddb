package savecore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/dumpkit/dumpkit/blockdev"
	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/dmesg"
	"github.com/dumpkit/dumpkit/vmcore"
)

// WriteDmesg writes the kernel log of source, a dump partition (or its
// image) or a vmcore file in any of the three formats savecore writes, to
// w in the format of vmcore-dmesg.txt (savecore --dmesg). It opens source
// read-only and writes nothing else. The symbols come from the file's
// VMCOREINFO (KDUMP sub-header or ELF note), the VMCOREINFO page in the
// dumped memory, then the System.map systemMap (empty: the default one),
// as for vmcore-dmesg.txt. A log cut short by damage is written up to the
// damage and the error returned.
func WriteDmesg(w io.Writer, source, systemMap string) error {
	dev, err := blockdev.Open(source, blockdev.ReadOnly)
	if err != nil {
		return err
	}
	defer dev.Close()
	dm, err := sourceMemory(dev, dev.Size())
	if err != nil {
		return fmt.Errorf("savecore: %s: %w", source, err)
	}
	kl, err := findLog(dm, systemMap)
	if kl == nil || kl.log == nil {
		return fmt.Errorf("savecore: %s: no kernel log: %w", source, err)
	}
	if _, werr := kl.log.WriteTo(w); werr != nil {
		return werr
	}
	if err != nil {
		return fmt.Errorf("savecore: %s: the kernel log is damaged, printed up to the damage: %w", source, err)
	}
	return nil
}

// sourceMemory opens r as a dump partition, else as a vmcore file.
func sourceMemory(r io.ReaderAt, size int64) (dumpMemory, error) {
	p, perr := diskdump.OpenPartition(r, size)
	if perr == nil {
		return partitionMemory(p)
	}
	v, verr := vmcore.Open(r, size)
	if verr != nil {
		return dumpMemory{}, fmt.Errorf("neither a dump partition (%w) nor a vmcore (%w)", perr, verr)
	}
	dm := dumpMemory{mem: v, frames: v.Pages()}
	if h := v.Header(); h != nil {
		dm.uts = h.Utsname
	}
	if ks := v.KdumpSubHeader(); ks != nil && ks.SizeVmcoreinfo > 0 && ks.SizeVmcoreinfo <= dmesg.MaxVMCOREINFO {
		note := make([]byte, ks.SizeVmcoreinfo)
		if err := diskdump.ReadFull(r, note, int64(ks.OffsetVmcoreinfo)); err == nil {
			dm.note = note
		}
	}
	for _, n := range v.Notes() {
		if n.Name == "VMCOREINFO" && n.Type == 0 && len(n.Desc) <= dmesg.MaxVMCOREINFO {
			dm.note = n.Desc
		}
	}
	if dm.uts.Machine == "" {
		machine, err := elfMachine(r)
		if err != nil {
			return dumpMemory{}, err
		}
		dm.uts.Machine = machine
	}
	if dm.uts.Release == "" && dm.note != nil {
		if info, err := dmesg.ParseVMCOREINFO(dm.note); err == nil {
			dm.uts.Release = info.OSRelease
		}
	}
	return dm, nil
}

// elfMachine is the utsname.machine of an ELF vmcore's e_machine: ELF
// vmcores carry no utsname.
func elfMachine(r io.ReaderAt) (string, error) {
	var eh [20]byte
	if err := diskdump.ReadFull(r, eh[:], 0); err != nil {
		return "", err
	}
	var o binary.ByteOrder = binary.LittleEndian
	if eh[5] == 2 {
		o = binary.BigEndian
	}
	switch m := o.Uint16(eh[18:]); m {
	case 62:
		return "x86_64", nil
	case 3:
		return "i686", nil
	default:
		return "", errors.New("the ELF vmcore's machine (e_machine " + fmt.Sprint(m) + ") has no log reader")
	}
}
