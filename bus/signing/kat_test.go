package signing

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

// specDigest computes the verification material the way the spec's
// Signature section writes it, from the attribute strings themselves:
// SHA256 over SHA256(id) + SHA256(source) + SHA256(specversion) +
// SHA256(type) + SHA256(datacontenttype) + SHA256(dataschema) +
// SHA256(subject) + SHA256(time) + SHA256(data) + SHA256(name) +
// SHA256(value) for each signed extension. It shares no code with Digest.
func specDigest(id, source, specversion, typ, contentType, schema, subject, rfc3339Time string, data []byte, exts ...string) []byte {
	var seq []byte
	for _, s := range []string{id, source, specversion, typ, contentType, schema, subject, rfc3339Time} {
		d := sha256.Sum256([]byte(s))
		seq = append(seq, d[:]...)
	}
	d := sha256.Sum256(data)
	seq = append(seq, d[:]...)
	for _, s := range exts { // name, value, name, value, ...
		d := sha256.Sum256([]byte(s))
		seq = append(seq, d[:]...)
	}
	out := sha256.Sum256(seq)
	return out[:]
}

// specKey is the P-256 key of the spec's test vectors.
func specKey(t *testing.T) *ecdsa.PublicKey {
	t.Helper()
	x, _ := new(big.Int).SetString("46950820868899156662930047687818585632848591499744589407958293238635476079160", 10)
	y, _ := new(big.Int).SetString("5640078356564379163099075877009565129882514886557779369047442380624545832820", 10)
	raw := append([]byte{4}, append(x.FillBytes(make([]byte, 32)), y.FillBytes(make([]byte, 32))...)...)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// The spec's test vectors, case by case: the verification material its
// reference implementation produced (keyid "testkey").
var specVectors = map[string]string{
	"1-no-time":   "eyJwYXlsb2FkVHlwZSI6Imh0dHBzOi8vY2xvdWRldmVudHMuaW8vdmVyaWZpYWJpbGl0eS9kc3NlL3YwLjEiLCJwYXlsb2FkIjoiNXh6NS9WdG94TkpWWWFZeG1MZUw2eEw5STZDYXY5UDNnb2g2cXlDWUdmUT0iLCJzaWduYXR1cmVzIjpbeyJrZXlpZCI6InRlc3RrZXkiLCJzaWciOiJ3WWo4YlJQWFlDSUxyeXdzUDdXR1VCd1RKc25aSFlYTUhpWEZtWWh1QkdhOU1ocDdYNHZFN1FBYkhXbytXZitjTURBYjN6dXlwRjVVbVdwZGtJUGppUT09In1dfQ==",
	"3-zulu-time": "eyJwYXlsb2FkVHlwZSI6Imh0dHBzOi8vY2xvdWRldmVudHMuaW8vdmVyaWZpYWJpbGl0eS9kc3NlL3YwLjEiLCJwYXlsb2FkIjoid0tDYThzcTNkeWcvMDBaaURReS9hWEFZMXRlcFFucktMYTZ4UDBZM0QvUT0iLCJzaWduYXR1cmVzIjpbeyJrZXlpZCI6InRlc3RrZXkiLCJzaWciOiJQSXhPUHF3MGFJeW9acExtdU5DTlpNS3pBNlgxWVovUXpiZVR3UzMvS3BBMjZJQzF0SU9oLzdkRFBDMWk0RW82b1dxRk1WRXJ4cEZrR0hGMnM0MHAvZz09In1dfQ==",
	"5-binary":    "eyJwYXlsb2FkVHlwZSI6Imh0dHBzOi8vY2xvdWRldmVudHMuaW8vdmVyaWZpYWJpbGl0eS9kc3NlL3YwLjEiLCJwYXlsb2FkIjoicUNTZWlaa1MraEg5V2lDbGZxNnBsZnFZTlZ5Mmt2eFdSZm9CckxFem9Eaz0iLCJzaWduYXR1cmVzIjpbeyJrZXlpZCI6InRlc3RrZXkiLCJzaWciOiJEWXdiU3V4SDRXcWFhQlZPVlU4TllJYTZXYnZDazkvdkc5aGV0d3BKNHpJNWo2am1BTGRNaHcrcVZuc211YzY2NWZqVlJGVDFRUHUvanA1Z0c0U2pzUT09In1dfQ==",
	"6-one-ext":   "eyJwYXlsb2FkVHlwZSI6Imh0dHBzOi8vY2xvdWRldmVudHMuaW8vdmVyaWZpYWJpbGl0eS9kc3NlL3YwLjEiLCJwYXlsb2FkIjoiUE1nU3ZQdG9nZ0FPY3RIaDZDM1F3VC96a2ZoQUpadFJKaVJnRFBFazhnRT0iLCJzaWduYXR1cmVzIjpbeyJrZXlpZCI6InRlc3RrZXkiLCJzaWciOiJzajBwRS96OW5xalh1QTFNRFRBT29lU2FtYlVXUmhHQ2tJWFdmM2VnaEUwOUd1UzhHQVZYZWdxaStmM1hwOG90WEFudHlyNnY3Q0lOaythWms1SmpUZz09In1dfQ==",
	"7-two-exts":  "eyJwYXlsb2FkVHlwZSI6Imh0dHBzOi8vY2xvdWRldmVudHMuaW8vdmVyaWZpYWJpbGl0eS9kc3NlL3YwLjEiLCJwYXlsb2FkIjoib3ZhaGZKV2FLYVBWRFRzUGlJUW9Ucjl1NUpOVEFFMjFHQkg1RzVQWkQ4MD0iLCJzaWduYXR1cmVzIjpbeyJrZXlpZCI6InRlc3RrZXkiLCJzaWciOiJONkU0TFJyZGRHZGJqc0FQODVCYkpsZUo5ZnV0c2E2YTdhRWVtc1Ric29XL0lKU3F2Zmc4ZkhPcGtzbkFZcHFtRnJQWk8zeitWUERrWjNEbWpMN1FQZz09In1dfQ==",
}

// TestSpecVectorsSignatures checks that every published vector's DSSE
// signature verifies with the spec's key (raw r||s ECDSA signatures), and
// that its payload is a 32-byte verification material.
func TestSpecVectorsSignatures(t *testing.T) {
	pub := specKey(t)
	for name, v := range specVectors {
		t.Run(name, func(t *testing.T) {
			m, check, err := decodeMaterial(v)
			if err != nil {
				t.Fatalf("decode: %s: %v", check, err)
			}
			id, check, err := verifyEnvelope(&m.env, Keys{"testkey": pub})
			if err != nil || id != "testkey" {
				t.Fatalf("verify envelope: %q %s: %v", id, check, err)
			}
		})
	}
}

// TestSpecVectorBinaryData is the spec's case 5, end to end: the event's
// material equals the published one, both by the recipe computed here and
// by Digest, and the published dssematerial verifies on the event.
func TestSpecVectorBinaryData(t *testing.T) {
	data, _ := base64.StdEncoding.DecodeString("8J+koQ==")
	want := specDigest("1", "example/uri", "1.0", "example.type.binary", "application/octet-stream", "", "", "", data)

	m, _, err := decodeMaterial(specVectors["5-binary"])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.digest, want) {
		t.Fatalf("published payload %x, recipe %x", m.digest, want)
	}

	e := event.New()
	e.SetID("1")
	e.SetSource("example/uri")
	e.SetType("example.type.binary")
	if err := e.SetData("application/octet-stream", data); err != nil {
		t.Fatal(err)
	}
	got, err := Digest(&e, nil)
	if err != nil || !bytes.Equal(got[:], want) {
		t.Fatalf("Digest = %x, %v; want %x", got, err, want)
	}
	e.SetExtension(AttrMaterial, specVectors["5-binary"])
	if id, err := Verify(&e, Keys{"testkey": specKey(t)}); err != nil || id != "testkey" {
		t.Fatalf("Verify = %q, %v", id, err)
	}
	e.SetType("example.type")
	if _, err := Verify(&e, Keys{"testkey": specKey(t)}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("changed type: %v; want ErrInvalid", err)
	}
}

// TestSpecVectorRelations checks what the spec's cases say of each other:
// a time with an offset signs as the same instant in Zulu (cases 3 and 4
// share one material), and an extension that is not listed is not signed
// (cases 6a and 6b share one).
func TestSpecVectorRelations(t *testing.T) {
	base := func() event.Event {
		e := event.New()
		e.SetID("1")
		e.SetSource("example/uri")
		e.SetType("example.type")
		if err := e.SetData("application/json", []byte(`{"hello":"world"}`)); err != nil {
			t.Fatal(err)
		}
		return e
	}
	zulu, offset := base(), base()
	zulu.SetTime(time.Date(2020, 6, 18, 17, 24, 53, 0, time.UTC))
	offset.SetTime(time.Date(2020, 6, 18, 19, 24, 53, 0, time.FixedZone("+02:00", 2*3600)))
	dz, _ := Digest(&zulu, nil)
	do, _ := Digest(&offset, nil)
	want := specDigest("1", "example/uri", "1.0", "example.type", "application/json", "", "", "2020-06-18T17:24:53Z", []byte(`{"hello":"world"}`))
	if dz != do || !bytes.Equal(dz[:], want) {
		t.Fatalf("zulu %x, offset %x, recipe %x", dz, do, want)
	}

	a, ab := base(), base()
	a.SetExtension("exta", "value1")
	ab.SetExtension("exta", "value1")
	ab.SetExtension("extb", "value2")
	da, _ := Digest(&a, []string{"exta"})
	dab, _ := Digest(&ab, []string{"exta"})
	want = specDigest("1", "example/uri", "1.0", "example.type", "application/json", "", "", "", []byte(`{"hello":"world"}`), "exta", "value1")
	if da != dab || !bytes.Equal(da[:], want) {
		t.Fatalf("6a %x, 6b %x, recipe %x", da, dab, want)
	}
	d2, _ := Digest(&ab, []string{"exta", "extb"})
	want = specDigest("1", "example/uri", "1.0", "example.type", "application/json", "", "", "", []byte(`{"hello":"world"}`), "exta", "value1", "extb", "value2")
	if !bytes.Equal(d2[:], want) {
		t.Fatalf("two extensions %x, recipe %x", d2, want)
	}
	// Case 8: a space after the comma is a format error.
	ab.SetExtension(AttrMaterial, specVectors["7-two-exts"])
	ab.SetExtension(AttrSignedExtensions, "exta, extb")
	_, err := Verify(&ab, Keys{"testkey": specKey(t)})
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Check != CheckSignedExtAttrs || !errors.Is(err, ErrInvalid) {
		t.Fatalf("case 8: %v; want a signedextattrs error", err)
	}
}

// TestDigestEveryAttribute checks each optional attribute and the time's
// precision against the recipe.
func TestDigestEveryAttribute(t *testing.T) {
	e := event.New()
	e.SetID("a1")
	e.SetSource("https://example.com/shop")
	e.SetType("com.example.order.created")
	e.SetSubject("order/42")
	e.SetDataSchema("https://example.com/schemas/order.json")
	e.SetTime(time.Date(2026, 3, 4, 5, 6, 7, 890_000_000, time.FixedZone("x", -5*3600)))
	e.SetExtension("partitionkey", "c-42")
	e.SetExtension("count", 7)
	if err := e.SetData("text/plain", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	got, err := Digest(&e, []string{"count", "partitionkey"})
	if err != nil {
		t.Fatal(err)
	}
	want := specDigest("a1", "https://example.com/shop", "1.0", "com.example.order.created", "text/plain",
		"https://example.com/schemas/order.json", "order/42", "2026-03-04T10:06:07Z", []byte("hello"),
		"count", "7", "partitionkey", "c-42")
	if !bytes.Equal(got[:], want) {
		t.Fatalf("Digest %x, recipe %x", got, want)
	}
	if _, err := Digest(&e, []string{"missing"}); err == nil {
		t.Fatal("Digest with a missing extension: no error")
	}
}

// decodeEnvelope reads an event's dssematerial the way any consumer would,
// without this package.
func decodeEnvelope(t *testing.T, e *bus.Event) *dsse.Envelope {
	t.Helper()
	s, _ := e.Extensions()[AttrMaterial].(string)
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	var env dsse.Envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	return &env
}
