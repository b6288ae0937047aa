// Package amqp is the RabbitMQ transport: a bus.Transport over AMQP 0-9-1
// with github.com/rabbitmq/amqp091-go, with publisher confirms, manual
// acknowledgements and automatic recovery.
//
// # Topology
//
//	bus topic            durable exchange of type "topic", named after the topic
//	event type           routing key (plain AMQP consumers can bind "com.example.order.#")
//	consumer group       durable queue "<topic>.<group>" (QueueName), bound with "#";
//	                     classic by default, quorum with Config.QueueType; optional
//	                     x-dead-letter-exchange, x-dead-letter-routing-key and, for
//	                     quorum queues, x-delivery-limit
//	consumers of a group competing consumers on the group's queue
//
// Publishing declares the topic's exchange; subscribing declares the
// exchange, the group's queue and the binding, and returns once they exist.
// Every group gets every event published after its queue was bound; a
// group's queue keeps its events while no consumer runs.
//
// # Wire format
//
// AMQP 0-9-1 has no official CloudEvents binding. This transport writes
// what the CloudEvents AMQP (1.0) binding writes, mapped onto 0-9-1's
// message properties and application headers:
//
//	binary mode (default, Config.Mode Binary):
//	  headers       "cloudEvents:<attribute>" for specversion, id, source, type,
//	                subject, time, dataschema and every extension, each a string
//	                in its canonical CloudEvents form (time is RFC 3339 with
//	                nanoseconds; binary extensions are base64)
//	  content-type  datacontenttype
//	  body          the event's data, unchanged
//	structured mode (Config.Mode Structured):
//	  content-type  application/cloudevents+json
//	  body          the event as CloudEvents JSON
//	both modes:
//	  message-id    the event id
//	  timestamp     the event time, to the second
//	  delivery-mode 2 (persistent)
//	  routing key   the event type
//
// The binding's "cloudEvents:" prefix was chosen over the "ce_" of the Kafka
// binding so that tools that already read CloudEvents from AMQP 1.0 brokers
// find the names they expect. On input every mode and prefix is accepted:
// "cloudEvents:", "cloudEvents_", "ce-" and "ce_" in any case, with typed
// AMQP header values (integers, booleans, byte arrays, timestamps)
// converted to their CloudEvents string form; a missing id falls back to the
// message-id property and a missing content-type property to a
// datacontenttype header. Extensions arrive as strings, as in every binary
// binding.
//
// A message that is not a valid CloudEvent 1.0 (no CloudEvents headers, a
// required attribute missing, an unparsable time or source, invalid
// structured JSON) is a poison message: it goes to Config.Poison with the
// reason and is acknowledged, so it is never redelivered. Kafka's transport
// has the same contract.
//
// # Delivery
//
// Publish sends every event with the mandatory flag on a channel in confirm
// mode, keeping up to Config.ConfirmWindow messages in flight over all
// callers, and returns when the broker has confirmed all of them. An event
// no queue takes is returned by the broker and becomes an error wrapping
// bus.ErrNoRoute; a negative confirm becomes one wrapping ErrNacked; both
// name the event.
//
// Each subscription consumes on its own channel with manual
// acknowledgements and a prefetch of twice its MaxBatch (Config.Prefetch).
// Handlers get batches; a batch is acknowledged, with one multiple-ack,
// after the handler returns nil. A failing batch is retried in place by
// bus.Deliver, as on every transport. When its attempts run out it goes to
// OnExhausted; without one, the subscription stops with an error wrapping
// bus.ErrMaxAttempts and the batch returns to the queue for the group's next
// consumer. With bus.OnExhausted(DeadLetter) the batch is instead rejected
// without requeue, so the queue's dead-letter exchange takes it, and
// consumption goes on. Message.Attempt starts from the broker's delivery
// count where it has one (quorum queues), and at 2 for a classic queue's
// redelivered message.
//
// Order: a queue keeps publish order for one consumer, so events of one key
// (indeed all events) keep their order in a group with a single consumer.
// Competing consumers and redeliveries reorder them; the transport does not
// promise order per partition key.
//
// # Recovery
//
// The transport keeps two connections, one for publishing and one for
// consuming. When one drops (a broker restart, "rabbitmqctl
// close_all_connections"), it reconnects with exponential backoff and
// jitter; publishers publish what the broker had not confirmed again, and
// subscriptions declare their queue again and resume. Duplicates are
// possible, losses are not. Every change of a connection's state is logged
// with log/slog and reported to Config.OnState; Stats counts reconnections,
// republished messages, nacks, returns and poison messages.
//
// # Configuration
//
// Config holds the settings; ConfigFromEnv fills it from the
// AUDITBUS_AMQP_* environment variables (URL, TLS files for amqps and mutual
// TLS, prefetch, queue type, dead-lettering, content mode, confirm window),
// with errors that name the bad variable and the values it accepts.
package amqp
