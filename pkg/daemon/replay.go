package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/pkg/cehttp"
	"github.com/auditbus/auditbus/pkg/egress"
	"github.com/auditbus/auditbus/pkg/httpapi"
	"github.com/auditbus/auditbus/pkg/replay"
	"github.com/auditbus/auditbus/pkg/router"
)

// A replay job records its destination by name, and a restarted daemon
// finds the destination again by that name alone. The names:
//
//	kafka:orders                     topic orders on the kafka transport
//	route:billing/invoices           destination invoices of route billing
//	webhook:https://host/p#1a2b...   a webhook given in a request: its URL
//	                                 (without password) and the hash of its
//	                                 settings, which are kept in a file
//	                                 <replay dir>/webhooks/<hash>.json
//
// Transport names hold no ":", route names no "/", so each name parses
// back unambiguously.
const (
	routePrefix   = "route:"
	webhookPrefix = "webhook:"
)

// destinations resolves replay destinations over the daemon's transports
// and routes: from a request (httpapi.Destinations) and from a job's
// recorded name (replay.Options.Resolve).
type destinations struct {
	trs    map[string]bus.Transport
	router *router.Router
	// hooks holds the settings of webhooks given in requests, which may
	// carry secrets (an Authorization header): files of mode 0600.
	hooks string
	// strict is where webhooks given in requests may connect; trusted,
	// where the routes file's may.
	strict, trusted *egress.Policy
}

func newDestinations(trs map[string]bus.Transport, rt *router.Router, replayDir string, strict, trusted *egress.Policy) *destinations {
	return &destinations{trs: trs, router: rt, hooks: filepath.Join(replayDir, "webhooks"), strict: strict, trusted: trusted}
}

// Target implements httpapi.Destinations.
func (d *destinations) Target(rd httpapi.ReplayDestination) (replay.Target, error) {
	switch {
	case rd.Webhook != nil:
		return d.newWebhook(webhookSpec{URL: rd.Webhook.URL, Timeout: rd.Webhook.TimeoutDuration(), Headers: rd.Webhook.Headers})
	case rd.Route != "":
		return d.routeTarget(rd.Route, rd.Destination)
	default:
		return d.topicTarget(rd.Transport, rd.Topic)
	}
}

// RouteDestinations implements httpapi.Destinations.
func (d *destinations) RouteDestinations(route string) ([]string, error) {
	cfg, ok := d.router.Route(route)
	if !ok {
		return nil, &replay.FieldError{Field: "route", Reason: fmt.Sprintf("%q is not a route of the routes file (AUDITBUS_ROUTES)", route)}
	}
	names := make([]string, len(cfg.Destinations))
	for i, dc := range cfg.Destinations {
		names[i] = dc.Name
	}
	return names, nil
}

// Resolve finds the target of a recorded name, for replay.Options.Resolve.
func (d *destinations) Resolve(name string) (replay.Target, error) {
	var t replay.Target
	var err error
	switch {
	case strings.HasPrefix(name, routePrefix):
		route, dest, ok := strings.Cut(strings.TrimPrefix(name, routePrefix), "/")
		if !ok {
			return nil, fmt.Errorf("replay destination %q: want route:ROUTE/DESTINATION", name)
		}
		t, err = d.routeTarget(route, dest)
	case strings.HasPrefix(name, webhookPrefix):
		t, err = d.loadWebhook(name)
	default:
		transport, topic, ok := strings.Cut(name, ":")
		if !ok {
			return nil, fmt.Errorf("replay destination %q: want TRANSPORT:TOPIC, route:ROUTE/DESTINATION or webhook:URL#HASH", name)
		}
		t, err = d.topicTarget(transport, topic)
	}
	if err != nil {
		return nil, fmt.Errorf("replay destination %q: %w", name, err)
	}
	return t, nil
}

// topicTarget is topic on an enabled transport, named "transport:topic".
func (d *destinations) topicTarget(transport, topic string) (replay.Target, error) {
	t, ok := d.trs[transport]
	if !ok {
		return nil, &replay.FieldError{Field: "destination.transport", Reason: fmt.Sprintf("%q is not an enabled transport (enabled: %s; see AUDITBUS_TRANSPORTS)",
			transport, strings.Join(d.enabled(), ", "))}
	}
	if topic == "" || strings.ContainsAny(topic, "\x00\r\n") {
		return nil, &replay.FieldError{Field: "destination.topic", Reason: fmt.Sprintf("%q is not a topic name", topic)}
	}
	return replay.TopicTarget(transport, t, topic), nil
}

func (d *destinations) enabled() []string {
	names := make([]string, 0, len(d.trs))
	for n := range d.trs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// routeTarget is destination dest of route, named "route:route/dest".
func (d *destinations) routeTarget(route, dest string) (replay.Target, error) {
	cfg, ok := d.router.Route(route)
	if !ok {
		return nil, &replay.FieldError{Field: "destination.route", Reason: fmt.Sprintf("%q is not a route of the routes file (AUDITBUS_ROUTES)", route)}
	}
	var names []string
	for _, dc := range cfg.Destinations {
		names = append(names, dc.Name)
		if dc.Name != dest {
			continue
		}
		name := routePrefix + route + "/" + dest
		if dc.Webhook != nil {
			h, err := dc.Webhook.NewWebhook(d.trusted)
			if err != nil {
				return nil, fmt.Errorf("route %q destination %q: %w", route, dest, err)
			}
			return replay.Named(name, replay.WebhookTarget(h)), nil
		}
		t, err := d.topicTarget(dc.Transport, dc.Topic)
		if err != nil {
			return nil, fmt.Errorf("route %q destination %q: %w", route, dest, err)
		}
		return replay.Named(name, t), nil
	}
	return nil, &replay.FieldError{Field: "destination.destination", Reason: fmt.Sprintf("route %q has no destination %q (its destinations: %s)",
		route, dest, strings.Join(names, ", "))}
}

// webhookSpec is what a webhook given in a request is made of; it is kept
// in the webhooks directory so that a resumed job gets the same webhook.
type webhookSpec struct {
	URL     string            `json:"url"`
	Timeout time.Duration     `json:"timeout,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
}

func (s webhookSpec) webhook(p *egress.Policy) (*cehttp.Webhook, error) {
	h := make(http.Header, len(s.Headers))
	for k, v := range s.Headers {
		h.Set(k, v)
	}
	return cehttp.NewWebhook(cehttp.WebhookConfig{URL: s.URL, Timeout: s.Timeout, Headers: h, Egress: p})
}

// checkTimeout bounds the look-up of a webhook's host when a request names it.
const checkTimeout = 5 * time.Second

// newWebhook checks spec, keeps it in the webhooks directory and returns
// its target, named "webhook:URL#HASH".
func (d *destinations) newWebhook(spec webhookSpec) (replay.Target, error) {
	h, b, err := d.webhookOf(spec)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	hash := hex.EncodeToString(sum[:8])
	if err := writePrivate(d.hooks, hash+".json", b); err != nil {
		return nil, fmt.Errorf("keep webhook settings for resuming: %w", err)
	}
	return replay.Named(webhookPrefix+h.URL()+"#"+hash, replay.WebhookTarget(h)), nil
}

// webhookOf checks spec against the strict egress policy and returns its
// webhook and its settings as they are kept.
func (d *destinations) webhookOf(spec webhookSpec) (*cehttp.Webhook, []byte, error) {
	h, err := spec.webhook(d.strict)
	if err != nil {
		return nil, nil, &replay.FieldError{Field: "destination.webhook", Reason: strings.TrimPrefix(err.Error(), "cehttp: ")}
	}
	// The host as it resolves now, for a clear refusal; every connection
	// is checked again when it is made.
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	if u, perr := url.Parse(spec.URL); perr == nil {
		if err := d.strict.Check(ctx, u.Hostname()); err != nil {
			return nil, nil, &replay.FieldError{Field: "destination.webhook.url", Reason: err.Error()}
		}
	}
	// Marshal sorts map keys, so equal settings hash alike.
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, nil, fmt.Errorf("encode webhook settings: %w", err)
	}
	return h, b, nil
}

// Check implements httpapi.DestinationChecker: it checks rd as Target
// does, keeping nothing, for a dry run.
func (d *destinations) Check(rd httpapi.ReplayDestination) error {
	if rd.Webhook == nil {
		_, err := d.Target(rd)
		return err
	}
	_, _, err := d.webhookOf(webhookSpec{URL: rd.Webhook.URL, Timeout: rd.Webhook.TimeoutDuration(), Headers: rd.Webhook.Headers})
	return err
}

// forget removes the settings files of the webhooks of jobs removed
// after their retention that no kept job names, for
// replay.Options.Removed. A job started later with the same webhook
// writes its file again.
func (d *destinations) forget(gone, kept []replay.Job) {
	used := map[string]bool{}
	for _, j := range kept {
		for _, t := range []replay.Target{j.Request.Destination, j.Request.DeadLetter} {
			if t != nil {
				used[t.String()] = true
			}
		}
	}
	for _, j := range gone {
		for _, t := range []replay.Target{j.Request.Destination, j.Request.DeadLetter} {
			if t == nil || !strings.HasPrefix(t.String(), webhookPrefix) || used[t.String()] {
				continue
			}
			name := t.String()
			hash := name[strings.LastIndexByte(name, '#')+1:]
			if _, err := hex.DecodeString(hash); err == nil && len(hash) == 16 {
				_ = os.Remove(filepath.Join(d.hooks, hash+".json"))
			}
		}
	}
}

// loadWebhook finds the webhook of a recorded name in the webhooks
// directory.
func (d *destinations) loadWebhook(name string) (replay.Target, error) {
	i := strings.LastIndexByte(name, '#')
	hash := name[i+1:]
	if _, err := hex.DecodeString(hash); i < 0 || err != nil || len(hash) != 16 {
		return nil, errors.New("want webhook:URL#HASH with a hash of 16 hex digits")
	}
	b, err := os.ReadFile(filepath.Join(d.hooks, hash+".json"))
	if err != nil {
		return nil, fmt.Errorf("read the webhook's settings: %w", err)
	}
	var spec webhookSpec
	if err := json.Unmarshal(b, &spec); err != nil {
		return nil, fmt.Errorf("webhook settings %s: %w", filepath.Join(d.hooks, hash+".json"), err)
	}
	h, err := spec.webhook(d.strict)
	if err != nil {
		return nil, err
	}
	return replay.Named(name, replay.WebhookTarget(h)), nil
}

// writePrivate writes name in dir (created if missing) with mode 0600,
// through a temporary file renamed over it, so a reader sees all or
// nothing.
func writePrivate(dir, name string, b []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, name+".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, name))
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}
