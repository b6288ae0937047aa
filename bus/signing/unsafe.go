package signing

import "unsafe"

// unsafeBytes views a non-empty string's bytes; callers never write them.
func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
