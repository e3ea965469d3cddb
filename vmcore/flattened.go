// Flattened streams: see the package comment (doc.go).
package vmcore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// Layout of the flattened format (doc/FLATTENED.md §2). Every integer in the
// stream is a signed 64-bit big-endian value, whatever the host that wrote it.
const (
	// FlattenedStartSize is the length of the start block that opens every
	// flattened stream; the first record header follows it.
	FlattenedStartSize = 4096

	// FlattenedHeaderSize is the length of a record header (destination
	// offset, then data length) and of the end marker.
	FlattenedHeaderSize = 16

	// flattenedType and flattenedVersion are the only values of the start
	// block's type and version fields that makedumpfile has ever written.
	flattenedType    = 1
	flattenedVersion = 1

	// flattenedEndFlag is the value of both fields of the end marker.
	flattenedEndFlag = -1
)

// flattenedSignature opens the start block. Readers compare it up to and
// including the first NUL (doc/FLATTENED.md §3); the writer pads it to 16
// bytes with NULs.
var flattenedSignature = []byte("makedumpfile\x00")

// Errors of the flattened format. Callers test for them with errors.Is.
var (
	// ErrNotFlattened means the bytes do not start with a flattened start
	// block (wrong signature or type, or shorter than the start block).
	ErrNotFlattened = errors.New("vmcore: not a flattened stream")

	// ErrFlattenedVersion means the start block is a flattened one but its
	// version is not 1, the only layout known.
	ErrFlattenedVersion = errors.New("vmcore: unsupported flattened format version")

	// ErrFlattenedEmpty is returned by FlattenedWriter.Close when no record
	// was written: a stream without records makes `makedumpfile -R` wait for
	// data that never comes (doc/FLATTENED.md §4 rule 2).
	ErrFlattenedEmpty = errors.New("vmcore: flattened stream has no record")

	// ErrFlattenedClosed is returned by FlattenedWriter.WriteAt after Close.
	ErrFlattenedClosed = errors.New("vmcore: flattened writer is closed")
)

// FlattenedError locates a problem in the start block of a flattened stream.
type FlattenedError struct {
	Off   int64  // byte offset in the stream of the field at fault
	Field string // name of the field, as makedumpfile's header struct calls it
	Msg   string // what is wrong with it
	Err   error  // ErrNotFlattened or ErrFlattenedVersion
}

func (e *FlattenedError) Error() string {
	return fmt.Sprintf("vmcore: flattened stream: %s at offset %#x: %s", e.Field, e.Off, e.Msg)
}

// Unwrap returns the sentinel the error is about.
func (e *FlattenedError) Unwrap() error { return e.Err }

// rawFlattenedStart mirrors makedumpfile's struct makedumpfile_header, the
// start block (doc/FLATTENED.md §2). Every field is big-endian.
type rawFlattenedStart struct {
	Signature [16]byte                      // signature, offset 0: "makedumpfile" and NULs
	Type      int64                         // type, offset 16: TYPE_FLAT_HEADER (1)
	Version   int64                         // version, offset 24: VERSION_FLAT_HEADER (1)
	_         [FlattenedStartSize - 32]byte // zeros up to MAX_SIZE_MDF_HEADER
}

// rawFlattenedHeader mirrors makedumpfile's struct makedumpfile_data_header,
// the header of a record and, with both fields -1, the end marker
// (doc/FLATTENED.md §2). Every field is big-endian.
type rawFlattenedHeader struct {
	Offset  int64 // offset, offset 0: destination offset in the rearranged file
	BufSize int64 // buf_size, offset 8: number of data bytes that follow
}

// decodeFlattenedStart decodes the fields of a start block from its first 32
// bytes (the padding is not read: makedumpfile ignores it).
func decodeFlattenedStart(b []byte) rawFlattenedStart {
	var s rawFlattenedStart
	copy(s.Signature[:], b[0:16])
	s.Type = int64(binary.BigEndian.Uint64(b[16:]))
	s.Version = int64(binary.BigEndian.Uint64(b[24:]))
	return s
}

// encode writes the start block into b[:FlattenedStartSize], padding
// included.
func (s *rawFlattenedStart) encode(b []byte) {
	clear(b[:FlattenedStartSize])
	copy(b[0:16], s.Signature[:])
	binary.BigEndian.PutUint64(b[16:], uint64(s.Type))
	binary.BigEndian.PutUint64(b[24:], uint64(s.Version))
}

// decodeFlattenedHeader decodes a record header from b[:FlattenedHeaderSize].
func decodeFlattenedHeader(b []byte) rawFlattenedHeader {
	return rawFlattenedHeader{
		Offset:  int64(binary.BigEndian.Uint64(b[0:])),
		BufSize: int64(binary.BigEndian.Uint64(b[8:])),
	}
}

// encode writes the header into b[:FlattenedHeaderSize].
func (h rawFlattenedHeader) encode(b []byte) {
	binary.BigEndian.PutUint64(b[0:], uint64(h.Offset))
	binary.BigEndian.PutUint64(b[8:], uint64(h.BufSize))
}

// flattenedEndMarker is the header that ends a stream.
var flattenedEndMarker = rawFlattenedHeader{Offset: flattenedEndFlag, BufSize: flattenedEndFlag}

// IsFlattened reports whether block, the first bytes of a device or file,
// begins with a flattened start block: the signature up to its NUL and type 1,
// the checks `makedumpfile -R` makes (doc/FLATTENED.md §3). It needs at least
// the first 32 bytes. The version is not checked here, so that a stream of an
// unknown version is still recognised as a dump; NewFlattenedReader rejects
// it with ErrFlattenedVersion.
func IsFlattened(block []byte) bool {
	return checkFlattenedStart(block) == nil
}

// checkFlattenedStart validates the signature and type fields of a start
// block (doc/FLATTENED.md §2, §3). Bytes 13 to 15 of the signature are not
// compared, as makedumpfile does not compare them.
func checkFlattenedStart(block []byte) error {
	if len(block) < 32 {
		return &FlattenedError{Off: 0, Field: "signature", Msg: fmt.Sprintf("only %d bytes", len(block)), Err: ErrNotFlattened}
	}
	s := decodeFlattenedStart(block)
	if !bytes.HasPrefix(s.Signature[:], flattenedSignature[:len(flattenedSignature)-1]) {
		return &FlattenedError{Off: 0, Field: "signature", Msg: "no makedumpfile signature", Err: ErrNotFlattened}
	}
	if s.Signature[len(flattenedSignature)-1] != 0 {
		return &FlattenedError{Off: 12, Field: "signature", Msg: "signature not NUL-terminated", Err: ErrNotFlattened}
	}
	if s.Type != flattenedType {
		return &FlattenedError{Off: 16, Field: "type", Msg: fmt.Sprintf("type %d, want %d", s.Type, flattenedType), Err: ErrNotFlattened}
	}
	return nil
}

// checkFlattenedVersion validates the version field of a start block that
// passed checkFlattenedStart.
func checkFlattenedVersion(block []byte) error {
	if v := decodeFlattenedStart(block).Version; v != flattenedVersion {
		return &FlattenedError{Off: 24, Field: "version", Msg: fmt.Sprintf("version %d, want %d", v, flattenedVersion), Err: ErrFlattenedVersion}
	}
	return nil
}

// encodeFlattenedStart returns the start block a writer emits
// (doc/FLATTENED.md §4 rule 1): the signature padded with NULs to 16 bytes,
// type 1, version 1, zeros up to FlattenedStartSize.
func encodeFlattenedStart() []byte {
	s := rawFlattenedStart{Type: flattenedType, Version: flattenedVersion}
	copy(s.Signature[:], flattenedSignature)
	b := make([]byte, FlattenedStartSize)
	s.encode(b)
	return b
}

// FlattenedEnd says how the record sequence of a flattened stream ended:
// at the end marker, or torn for one of the listed reasons.
type FlattenedEnd int

// How a flattened stream ends. Every value but FlattenedComplete means the
// stream is torn: its writer never finished, and whatever follows the last
// plausible record on the device is not part of it (doc/FLATTENED.md §7).
const (
	FlattenedComplete    FlattenedEnd = iota // the end marker (-1, -1)
	FlattenedNoMarker                        // the stream's bytes end where a header should start
	FlattenedCutHeader                       // fewer bytes left than a header
	FlattenedBadHeader                       // offset < 0 or size <= 0, and not the end marker
	FlattenedCutData                         // the record's data runs past the stream's end
	FlattenedBeyondLimit                     // offset+size past the largest vmcore size accepted
)

var flattenedEndNames = [...]string{
	FlattenedComplete:    "complete",
	FlattenedNoMarker:    "no end marker",
	FlattenedCutHeader:   "header cut short",
	FlattenedBadHeader:   "implausible header",
	FlattenedCutData:     "data cut short",
	FlattenedBeyondLimit: "record beyond the size limit",
}

func (e FlattenedEnd) String() string {
	if e >= 0 && int(e) < len(flattenedEndNames) {
		return flattenedEndNames[e]
	}
	return fmt.Sprintf("FlattenedEnd(%d)", int(e))
}
