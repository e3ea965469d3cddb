package main

import "errors"

// rehearse is -R. The kernel-exact dump writer it drives (diskdump.WriteDump)
// is not merged yet; until it is, -R fails with exit 255.
func (c *command) rehearse() error {
	return errors.New("-R: this build has no dump writer yet (diskdump.WriteDump)")
}
