package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/mem"
	"github.com/auditbus/auditbus/pkg/httpapi"
	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/sqlite"
)

// The API on the embedded parts, without auth: ingest an event in binary
// mode, then find it in the audit store.
func ExampleNew() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "auditbus-example")
	defer func() { _ = os.RemoveAll(dir) }()
	store, err := sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = store.Close() }()
	audit := sinks.NewWriter(store, sinks.WriterOptions{})
	defer func() { _ = audit.Close() }()
	tr := mem.New()
	defer func() { _ = tr.Close() }()
	// The mem transport refuses topics nobody reads.
	sub, _ := tr.Subscribe(ctx, "events", "billing", func(context.Context, []bus.Message) error { return nil }, bus.SubscribeConfig{})
	defer func() { _ = sub.Close() }()

	api, err := httpapi.New(httpapi.Options{Store: store, Audit: audit, Transport: tr, TransportName: "mem"})
	if err != nil {
		fmt.Println(err)
		return
	}
	r := httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(`{"total":12}`))
	r.Header.Set("ce-specversion", "1.0")
	r.Header.Set("ce-id", "42")
	r.Header.Set("ce-source", "/shop")
	r.Header.Set("ce-type", "com.example.order.created")
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	api.ServeHTTP(w, r)
	fmt.Print(w.Code, " ", w.Body.String())

	// Every version of the event, each with its trail of ledger entries.
	w = httptest.NewRecorder()
	api.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/events/42", nil))
	var answer struct {
		Items []struct {
			Event    json.RawMessage `json:"event"`
			Digest   string          `json:"digest"`
			Conflict bool            `json:"conflict"`
			Trail    []struct {
				Seq                               uint64
				Kind, Transport, Topic, Principal string
			} `json:"trail"`
		} `json:"items"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &answer); err != nil {
		fmt.Println(err)
		return
	}
	for _, v := range answer.Items {
		fmt.Println(w.Code, string(v.Event))
		fmt.Println(v.Digest, "conflict:", v.Conflict)
		for _, en := range v.Trail {
			fmt.Println(en.Seq, en.Kind, en.Transport, en.Topic, en.Principal)
		}
	}
	// Output:
	// 202 {"accepted":1}
	// 200 {"specversion":"1.0","id":"42","source":"/shop","type":"com.example.order.created","datacontenttype":"application/json","data":{"total":12}}
	// sha256:c592d5c0f160444cd63ad464061ade11ecf54a8b463582d99d36bd276735ad73 conflict: false
	// 1 received http events anonymous
}
