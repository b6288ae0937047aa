package workload

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

// WatermillKafka is Watermill's Kafka Pub/Sub (watermill-kafka v3, on
// sarama) with its default marshaler and a consumer group, its default
// sarama configurations with two changes: the producer waits for all
// in-sync replicas, as auditbus's does, and a new group starts at the
// oldest offset, as auditbus's does (Watermill documents that setting; its
// default is the newest). Its Publish already returns only once the broker
// acknowledged every message: it sends them one by one with a synchronous
// producer. Messages carry the same ids and payloads as the auditbus
// events, built before timing, and no metadata, so Watermill moves one
// header per message where auditbus moves six.
func WatermillKafka(k Kafka) Paced {
	return Paced{System: System{Name: "watermill kafka", setup: func(w *Workload) (*Trial, error) { return setupWatermillKafka(k, w) }}}
}

// watermillProbe is the id of the message that tells the subscriber has
// joined its group; it is not part of the workload.
const watermillProbe = "probe"

func setupWatermillKafka(k Kafka, w *Workload) (*Trial, error) {
	msgs := make([]*message.Message, w.Events)
	for i := range msgs {
		msgs[i] = message.NewMessage(w.ID(i), w.Payload(i))
	}
	topic, drop, err := kafkaTopic(k, "watermill")
	if err != nil {
		return nil, err
	}
	pubCfg := wkafka.DefaultSaramaSyncPublisherConfig()
	pubCfg.Producer.RequiredAcks = sarama.WaitForAll
	pub, err := wkafka.NewPublisher(wkafka.PublisherConfig{
		Brokers: k.Brokers, Marshaler: wkafka.DefaultMarshaler{}, OverwriteSaramaConfig: pubCfg,
	}, watermill.NopLogger{})
	if err != nil {
		return nil, errors.Join(err, drop())
	}
	subCfg := wkafka.DefaultSaramaSubscriberConfig()
	subCfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	sub, err := wkafka.NewSubscriber(wkafka.SubscriberConfig{
		Brokers: k.Brokers, Unmarshaler: wkafka.DefaultMarshaler{}, ConsumerGroup: topic, OverwriteSaramaConfig: subCfg,
	}, watermill.NopLogger{})
	if err != nil {
		return nil, errors.Join(err, pub.Close(), drop())
	}
	t := &lockedTally{tally: newTally(w)}
	ctx, cancel := context.WithCancel(context.Background())
	closeAll := func() error {
		cancel()
		return errors.Join(pub.Close(), sub.Close(), drop())
	}
	ch, err := sub.Subscribe(ctx, topic)
	if err != nil {
		return nil, errors.Join(err, closeAll())
	}
	ready := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for m := range ch {
			m.Ack()
			if m.UUID == watermillProbe {
				close(ready)
				continue
			}
			t.mu.Lock()
			t.record(m.UUID, len(m.Payload))
			t.mu.Unlock()
		}
	}()
	// Its Subscribe returns before the group is joined; auditbus's returns
	// after. A probe makes sure Watermill's consumer is in its group before
	// timing too.
	if err := pub.Publish(topic, message.NewMessage(watermillProbe, nil)); err != nil {
		return nil, errors.Join(err, closeAll())
	}
	select {
	case <-ready:
	case <-stopped:
		return nil, errors.Join(errors.New("consumer stopped before the probe arrived"), closeAll())
	case <-time.After(RunTimeout):
		return nil, errors.Join(fmt.Errorf("the probe did not arrive within %v", RunTimeout), closeAll())
	}
	return &Trial{
		w:     w,
		tally: t.tally,
		publish: func(_ context.Context, lo, hi int) error {
			return pub.Publish(topic, msgs[lo:hi]...)
		},
		stopped: stopped,
		close: func() error {
			err := closeAll()
			<-stopped
			return err
		},
	}, nil
}
