package ledgertree

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/auditbus/auditbus/sinks"
	"github.com/transparency-dev/merkle/rfc6962"
)

// LeafVersion names the leaf encoding of an entry without a signature
// result; it starts such a leaf.
const LeafVersion = "auditbus-leaf-v1"

// LeafVersion2 names the leaf encoding of an entry with a signature result
// (sinks.Entry.Signature set); it starts such a leaf.
const LeafVersion2 = "auditbus-leaf-v2"

// AppendLeaf appends the leaf encoding of e to b: every field of the
// entry, its position included. An entry whose Signature is empty (every
// entry written before signatures were checked, and every entry of a
// daemon without a signer registry) is encoded as auditbus-leaf-v1:
//
//	"auditbus-leaf-v1"
//	field(log) uvarint(seq) varint(time as Unix nanoseconds)
//	field(kind) field(source) field(id) digest (32 bytes, the version's)
//	field(transport) field(topic) varint(partition) varint(offset)
//	field(request) field(principal) field(route) field(destination)
//	varint(attempts) field(error) field(replay)
//
// and one with a Signature as auditbus-leaf-v2: the same fields after
// "auditbus-leaf-v2" instead, then field(signature). Leaves written in v1
// so keep their hashes, and a verifier picks the encoding from the entry
// alone.
//
// field(s) is uvarint(len(s)) and the bytes of s, and (u)varint is Go's
// encoding/binary (u)varint. The leaf's hash is RFC 6962's:
// SHA-256(0x00 || leaf). The entry's TraceID and SpanID are left out: they
// point into tracing, which is not evidence, and leaves written before
// entries had them stay verifiable.
func AppendLeaf(b []byte, e *sinks.Entry) []byte {
	if e.Signature == "" {
		b = append(b, LeafVersion...)
	} else {
		b = append(b, LeafVersion2...)
	}
	b = field(b, e.Log)
	b = binary.AppendUvarint(b, e.Seq)
	b = binary.AppendVarint(b, e.Time.UnixNano())
	b = field(b, e.Kind)
	b = field(b, e.Source)
	b = field(b, e.ID)
	b = append(b, e.Digest[:]...)
	b = field(b, e.Transport)
	b = field(b, e.Topic)
	b = binary.AppendVarint(b, int64(e.Partition))
	b = binary.AppendVarint(b, e.Offset)
	b = field(b, e.Request)
	b = field(b, e.Principal)
	b = field(b, e.Route)
	b = field(b, e.Destination)
	b = binary.AppendVarint(b, int64(e.Attempts))
	b = field(b, e.Error)
	b = field(b, e.Replay)
	if e.Signature != "" {
		b = field(b, e.Signature)
	}
	return b
}

// LeafHash is the RFC 6962 leaf hash of e's leaf encoding.
func LeafHash(e *sinks.Entry) []byte {
	var buf [512]byte
	buf[0] = rfc6962.RFC6962LeafHashPrefix
	h := sha256.Sum256(AppendLeaf(buf[:1], e))
	return h[:]
}

// HashLeaf is the RFC 6962 hash of leaf bytes given with the leaf prefix
// byte (0x00) in front: the caller that encodes the leaf after it saves a
// copy.
func HashLeaf(prefixed []byte) []byte {
	h := sha256.Sum256(prefixed)
	return h[:]
}

// hashChildren is RFC 6962's node hash, SHA-256(0x01 || left || right),
// without the allocations of a hash.Hash.
func hashChildren(left, right []byte) []byte {
	var b [1 + 2*sha256.Size]byte
	b[0] = rfc6962.RFC6962NodeHashPrefix
	copy(b[1:], left)
	copy(b[1+sha256.Size:], right)
	h := sha256.Sum256(b[:])
	return h[:]
}

func field(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}
