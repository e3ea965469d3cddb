package cmdlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options configure a [Handler].
type Options struct {
	// Prog starts every line: "savecore", "dumpformat".
	Prog string
	// Level is the lowest level printed; nil means slog.LevelInfo.
	Level slog.Leveler
	// Journal prefixes each line with its sd-daemon priority, "<3>" for an
	// error; set it when standard error is the journal ([IsJournal]).
	Journal bool
}

// Handler is a slog.Handler that prints one plain line per record. It is
// safe for concurrent use; each record is written with a single Write.
type Handler struct {
	w     io.Writer
	opt   Options
	mu    *sync.Mutex
	attrs []slog.Attr // from WithAttrs, keys qualified with their groups
	group string      // "a.b." for records inside WithGroup("a").WithGroup("b")
}

// New returns a Handler writing to w.
func New(w io.Writer, opt Options) *Handler {
	if opt.Level == nil {
		opt.Level = slog.LevelInfo
	}
	return &Handler{w: w, opt: opt, mu: new(sync.Mutex)}
}

// Enabled reports whether records of level l are printed.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.opt.Level.Level()
}

// WithAttrs returns a Handler that adds attrs to every record.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	h2 := *h
	h2.attrs = slices.Clone(h.attrs)
	for _, a := range attrs {
		h2.attrs = appendAttr(h2.attrs, h.group, a)
	}
	return &h2
}

// WithGroup returns a Handler that qualifies the keys of later attributes
// with name.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.group = h.group + name + "."
	return &h2
}

// Handle prints the record as one line.
func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	attrs := slices.Clone(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		attrs = appendAttr(attrs, h.group, a)
		return true
	})
	line := h.Format(r.Level, r.Message, attrs)
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, line)
	return err
}

// appendAttr appends a, with groups flattened into "group.key" and empty
// attributes dropped.
func appendAttr(dst []slog.Attr, prefix string, a slog.Attr) []slog.Attr {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return dst
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			dst = appendAttr(dst, p, g)
		}
		return dst
	}
	a.Key = prefix + a.Key
	return append(dst, a)
}

// Format renders one record as its line, newline included:
//
//	[<N>]PROG: [DEVICE: ]sentence[ (key: value, ...)][: err]
//
// The sentence is msg with each "{key}" replaced by that attribute's value.
// The "device" and "err" attributes, when msg does not name them, become
// the DEVICE part and the end of the line.
func (h *Handler) Format(level slog.Level, msg string, attrs []slog.Attr) string {
	var device string
	for _, a := range attrs {
		if a.Key == "device" {
			device = text(a.Value, h.opt.Prog, "")
		}
	}
	used := map[string]bool{}
	sentence := expand(msg, attrs, used, h.opt.Prog, device)
	var errPart string
	var extras []string
	for _, a := range attrs {
		switch {
		case used[a.Key]:
		case a.Key == "device":
		case a.Key == "err":
			errPart = text(a.Value, h.opt.Prog, device)
		default:
			extras = append(extras, strings.ReplaceAll(a.Key, "_", " ")+": "+text(a.Value, h.opt.Prog, device))
		}
	}
	var b strings.Builder
	if h.opt.Journal {
		fmt.Fprintf(&b, "<%d>", Priority(level))
	}
	b.WriteString(h.opt.Prog)
	b.WriteString(": ")
	if device != "" && !used["device"] {
		b.WriteString(device)
		b.WriteString(": ")
	}
	b.WriteString(clean(sentence))
	if len(extras) > 0 {
		b.WriteString(" (" + strings.Join(extras, ", ") + ")")
	}
	if errPart != "" {
		b.WriteString(": " + errPart)
	}
	b.WriteByte('\n')
	return b.String()
}

// expand replaces each "{key}" of msg naming an attribute by its value and
// records the keys it used. Braces that name no attribute stay as they are.
func expand(msg string, attrs []slog.Attr, used map[string]bool, prog, device string) string {
	if !strings.Contains(msg, "{") {
		return msg
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(msg, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(msg[i:], '}')
		if j < 0 {
			break
		}
		key := msg[i+1 : i+j]
		k := slices.IndexFunc(attrs, func(a slog.Attr) bool { return a.Key == key })
		if k < 0 {
			b.WriteString(msg[:i+1])
			msg = msg[i+1:]
			continue
		}
		used[key] = true
		b.WriteString(msg[:i])
		v := device
		if key != "device" {
			v = text(attrs[k].Value, prog, device)
		}
		b.WriteString(v)
		msg = msg[i+j+1:]
	}
	b.WriteString(msg)
	return b.String()
}

// TimeLayout is how times are shown.
const TimeLayout = "2006-01-02 15:04:05 MST"

// text renders a value for a sentence.
func text(v slog.Value, prog, device string) string {
	switch v.Kind() {
	case slog.KindTime:
		return clean(v.Time().Format(TimeLayout))
	case slog.KindDuration:
		return Duration(v.Duration())
	case slog.KindBool:
		if v.Bool() {
			return "yes"
		}
		return "no"
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return clean(ErrorText(x, prog, device))
		case []string:
			return clean(strings.Join(x, ", "))
		case fmt.Stringer:
			return clean(x.String())
		}
	}
	return clean(v.String())
}

// Duration shows d rounded to what a person reads: milliseconds below a
// minute, seconds above.
func Duration(d time.Duration) string {
	if d >= time.Minute {
		return d.Round(time.Second).String()
	}
	return d.Round(time.Millisecond).String()
}

// ErrorText is err's message without what the line already says: a leading
// "PROG: " (the package prefix of our errors, also where a wrapped error
// repeats it) and then "DEVICE: ", and the
// path of an *os.PathError about the device itself (with its operation too
// when that is only opening or looking up the device).
func ErrorText(err error, prog, device string) string {
	var pe *os.PathError
	if device != "" && errors.As(err, &pe) && pe == err && pe.Path == device {
		switch pe.Op {
		case "open", "stat", "lstat":
			// Looking the device up is what the line is about already.
			return pe.Err.Error()
		}
		return pe.Op + ": " + pe.Err.Error()
	}
	s := err.Error()
	if prog != "" {
		// Wrapped errors of our packages repeat the prefix inside too.
		s = strings.TrimPrefix(strings.ReplaceAll(s, ": "+prog+": ", ": "), prog+": ")
	}
	if device != "" {
		s = strings.TrimPrefix(s, device+": ")
	}
	return s
}

// clean makes s fit on one line: trailing newlines go, inner ones become
// " | ", and other control characters become '?' (text from a damaged dump
// or a script must not move the cursor or forge a line).
func clean(s string) string {
	s = strings.TrimRight(s, "\r\n")
	if strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString(" | ")
		case r == '\t':
			b.WriteByte(' ')
		case r < 0x20 || r == 0x7f:
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
