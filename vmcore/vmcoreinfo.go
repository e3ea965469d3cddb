package vmcore

import (
	"encoding/binary"
	"strconv"
	"strings"
)

// vmcoreinfoName is the owner name of the VMCOREINFO ELF note, whose type
// is 0 (doc/DMESG.md §2).
const vmcoreinfoName = "VMCOREINFO"

// vmcoreinfoText is the VMCOREINFO stored in a KDUMP sub-header block,
// after the struct, where room bytes are left: Options.VMCOREINFO when
// given and it fits, else the one made from the header.
func vmcoreinfoText(s *source, room int) string {
	if len(s.vmcoreinfo) > 0 && len(s.vmcoreinfo) <= room {
		return string(s.vmcoreinfo)
	}
	return kdumpVmcoreinfo(s.hdr)
}

// appendVMCOREINFONote appends a VMCOREINFO note holding info to the notes
// of an ELF vmcore, within the capacity of notes (the padding of the
// header's first page or pages), so that the header size does not depend
// on it. A text that does not fit, or none, leaves notes as they are.
func appendVMCOREINFONote(notes []byte, o binary.ByteOrder, info []byte) []byte {
	if len(info) == 0 {
		return notes
	}
	name := pad4(len(vmcoreinfoName) + 1)
	n := noteHdrSize + name + pad4(len(info))
	if len(notes)+n > cap(notes) {
		return notes
	}
	var nh [noteHdrSize]byte
	o.PutUint32(nh[0:], uint32(len(vmcoreinfoName)+1)) // with its NUL, as the kernel writes it
	o.PutUint32(nh[4:], uint32(len(info)))
	o.PutUint32(nh[8:], 0)
	notes = append(notes, nh[:]...)
	notes = append(notes, vmcoreinfoName...)
	notes = append(notes, make([]byte, name-len(vmcoreinfoName))...)
	notes = append(notes, info...)
	return append(notes, make([]byte, pad4(len(info))-len(info))...)
}

// physBase is NUMBER(phys_base) of a VMCOREINFO text, 0 when absent or
// malformed. A KDUMP file carries it in kdump_sub_header.phys_base too,
// where makedumpfile takes it from to translate the kernel's addresses (a
// relocated, e.g. KASLR, x86_64 kernel has a non-zero one).
func physBase(info string) uint64 {
	for line := range strings.Lines(info) {
		v, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "NUMBER(phys_base)=")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0
		}
		return uint64(n)
	}
	return 0
}
