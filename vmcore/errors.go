package vmcore

import (
	"fmt"

	"github.com/dumpkit/dumpkit/diskdump"
)

// formatErr locates a problem in a vmcore file: off is the byte offset from
// the start of the file, blk the block holding it (-1 when the field is not
// block-addressed) and field the C name of the field at fault.
func formatErr(off, blk int64, field string, err error, format string, args ...any) *diskdump.FormatError {
	return &diskdump.FormatError{Off: off, Blk: blk, Field: field, Msg: fmt.Sprintf(format, args...), Err: err}
}
