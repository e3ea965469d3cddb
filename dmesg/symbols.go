package dmesg

import (
	"fmt"
	"iter"
	"strings"
)

// Origin says where the symbols for a log came from.
type Origin int

// The sources of symbols, in the order FindSymbols tries them.
const (
	FromNote      Origin = iota + 1 // the dump's VMCOREINFO note or sub-header
	FromMemory                      // the VMCOREINFO page in the dumped memory
	FromSystemMap                   // a System.map checked against the dump
)

// String names the origin for messages.
func (o Origin) String() string {
	switch o {
	case FromNote:
		return "VMCOREINFO note"
	case FromMemory:
		return "VMCOREINFO in memory"
	case FromSystemMap:
		return "System.map"
	}
	return fmt.Sprintf("Origin(%d)", int(o))
}

// Sources are the places FindSymbols may take the log's symbols from.
type Sources struct {
	Utsname Utsname          // from the dump header; Release is needed by the search and the map
	Note    []byte           // VMCOREINFO text the dump carries, or nil
	Pages   iter.Seq[uint64] // frames the dump holds, in increasing order; nil skips the search
	Map     *SystemMap       // a System.map, or nil
}

// FindSymbols returns the symbols of the dumped kernel from the first
// source that gives a usable log layout: the dump's note, the VMCOREINFO
// page in memory (FindVMCOREINFO), then the System.map once CheckSystemMap
// accepts it (doc/DMESG.md §2, §6, §7). When none does, the error joins the
// reason of every source tried, so that it can be shown in one message.
func FindSymbols(mem Memory, arch Arch, src Sources) (*VMCOREINFO, Origin, error) {
	if err := checkArch(arch); err != nil {
		return nil, 0, err
	}
	var errs []error
	if src.Note != nil {
		info, err := ParseVMCOREINFO(src.Note)
		if err == nil {
			_, err = ChooseLayout(info)
		}
		if err == nil {
			return info, FromNote, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", FromNote, err))
	}
	if src.Pages != nil {
		info, err := FindVMCOREINFO(mem, arch, src.Utsname.Release, src.Pages)
		if err == nil {
			return info, FromMemory, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", FromMemory, err))
	}
	if src.Map != nil {
		info, err := symbolsFromMap(mem, arch, src)
		if err == nil {
			return info, FromSystemMap, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", FromSystemMap, err))
	}
	if len(errs) == 0 {
		return nil, 0, fmt.Errorf("%w: no VMCOREINFO and no System.map", ErrNoLogSymbols)
	}
	return nil, 0, &SourcesError{Errs: errs}
}

// SourcesError lists why each source of symbols was refused. Its message
// is one line, for a savecore diagnostic.
type SourcesError struct {
	Errs []error // one per source tried, in order
}

func (e *SourcesError) Error() string {
	parts := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		msg := strings.ReplaceAll(err.Error(), "dmesg: ", "")
		parts[i] = strings.ReplaceAll(msg, "\n", " ")
	}
	return "dmesg: no symbols for the log: " + strings.Join(parts, "; ")
}

// Unwrap returns the errors of the sources.
func (e *SourcesError) Unwrap() []error { return e.Errs }

func symbolsFromMap(mem Memory, arch Arch, src Sources) (*VMCOREINFO, error) {
	if err := CheckSystemMap(mem, arch, src.Map, src.Utsname); err != nil {
		return nil, err
	}
	return src.Map.VMCOREINFO(src.Utsname.Release, mem.PageSize())
}
