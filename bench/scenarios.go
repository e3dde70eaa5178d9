package main

// buildScenarios lists the rows of the table: first the typed rows (the
// path services run: a struct published with gossip.NewEvent and handled
// with gossip.Typed, on separate buses), each with the targets;
// then the raw-bytes rows (gossip moving the raw clients' pre-encoded
// payloads as json.RawMessage), the transports again plus fan-out,
// competing consumers and concurrent publishers. Event counts are for the
// full run; -quick scales them down.
func buildScenarios(ne *natsEnv, re *redisEnv, _ config) []*Scenario {
	fanOut := Shape{Groups: 4}
	compete := Shape{Members: 3}

	// The targets: rate against raw for one event per call (0.9)
	// or batched / concurrent / NATS core (0.8); against Watermill and,
	// on a broker, client CPU and allocations per event. Latency rows add
	// p99 ≤ 1.5 × raw.
	single := Target{MinRatio: 0.9, Watermill: true, Broker: true}
	many := Target{MinRatio: 0.8, Watermill: true, Broker: true}

	memory := func(name string, typed bool, p Params, t Target, chart string, lat bool) *Scenario {
		return &Scenario{
			Name: name, Typed: typed, Transport: chart, Params: p, Target: t, Latency: lat,
			Impls: [nImpl]Impl{
				{Label: "Go channel", Open: rawChannel},
				{Label: "gossip memory", Open: gossipMemory(typed)},
				{Label: "GoChannel", Open: watermillGoChannel(typed), Note: "GoChannel has no consumer groups"},
			},
		}
	}
	natsImpls := func(js, typed bool) [nImpl]Impl {
		if js {
			return [nImpl]Impl{
				{Label: "nats.go JetStream", Open: ne.rawJetStream},
				{Label: "gossip nats", Open: ne.gossip("jetstream", typed)},
				{Label: "watermill-nats JetStream", Open: ne.watermill(true, typed)},
			}
		}
		return [nImpl]Impl{
			{Label: "nats.go core", Open: ne.rawCore},
			{Label: "gossip nats core", Open: ne.gossip("core", typed)},
			{Label: "watermill-nats core", Open: ne.watermill(false, typed)},
		}
	}
	nats := func(name string, js, typed bool, p Params, t Target, chart string, lat bool) *Scenario {
		return &Scenario{Name: name, Typed: typed, Transport: chart, Params: p, Target: t, Latency: lat,
			Impls: natsImpls(js, typed), Cleanup: ne.cleanup, ServerCPU: ne.cpu}
	}
	var streams, pubsub func(name string, typed bool, p Params, t Target, chart string, lat bool) *Scenario
	if re != nil {
		streams = func(name string, typed bool, p Params, t Target, chart string, lat bool) *Scenario {
			return &Scenario{Name: name, Typed: typed, Transport: chart, Params: p, Target: t, Latency: lat,
				Cleanup: re.cleanup, ServerCPU: re.srv.CPU,
				Impls: [nImpl]Impl{
					{Label: "go-redis XADD/XREADGROUP", Open: re.rawStreams},
					{Label: "gossip redis", Open: re.gossip("streams", typed)},
					{Label: "watermill-redisstream", Open: re.watermill(typed)},
				}}
		}
		pubsub = func(name string, typed bool, p Params, t Target, chart string, lat bool) *Scenario {
			return &Scenario{Name: name, Typed: typed, Transport: chart, Params: p, Target: t, Latency: lat,
				Cleanup: re.cleanup, ServerCPU: re.srv.CPU,
				Impls: [nImpl]Impl{
					{Label: "go-redis PUBLISH/SUBSCRIBE", Open: re.rawPubSub},
					{Label: "gossip redis pubsub", Open: re.gossip("pubsub", typed)},
					{Label: "—", Note: "watermill-redisstream has no Pub/Sub"},
				}}
		}
	}

	const typed, raw = true, false
	s := []*Scenario{
		memory("typed: in-process, 1 event per Publish", typed, Params{Events: 600_000},
			Target{MinRate: 1.5e6, Watermill: true}, "in-process", true),
		nats("typed: NATS core", false, typed, Params{Events: 500_000},
			Target{MinRatio: 0.8, NoLoss: true, Watermill: true, Broker: true}, "NATS core", true),
		nats("typed: JetStream, 1 event per Publish", true, typed, Params{Events: 5_000}, single, "JetStream 1 per Publish", true),
		nats("typed: JetStream, batches of 100", true, typed, Params{Events: 60_000, Batch: 100}, many, "JetStream batches of 100", false),
		nats("typed: JetStream, 64 publishers", true, typed, Params{Events: 60_000, Publishers: 64}, many, "JetStream 64 publishers", false),
	}
	if re != nil {
		s = append(s,
			streams("typed: Redis Streams, 1 event per Publish", typed, Params{Events: 6_000}, single, "Redis Streams 1 per Publish", true),
			streams("typed: Redis Streams, batches of 100", typed, Params{Events: 100_000, Batch: 100}, many, "Redis Streams batches of 100", false),
			streams("typed: Redis Streams, 64 publishers", typed, Params{Events: 60_000, Publishers: 64}, many, "Redis Streams 64 publishers", false),
			pubsub("typed: Redis Pub/Sub", typed, Params{Events: 6_000}, single, "Redis Pub/Sub", true),
		)
	}
	s = append(s, idempotencyScenarios(ne, re)...)
	s = append(s,
		memory("raw bytes: in-process, 1 publisher", raw, Params{Events: 600_000}, Target{}, "", false),
		memory("raw bytes: in-process, 4 publishers", raw, Params{Events: 600_000, Publishers: 4}, Target{}, "", false),
		memory("raw bytes: in-process, 64 publishers", raw, Params{Events: 600_000, Publishers: 64}, Target{}, "", false),
		memory("raw bytes: in-process, fan-out to 4 groups", raw, Params{Events: 200_000, Shape: fanOut}, Target{}, "", false),
		memory("raw bytes: in-process, 1 group of 3 members", raw, Params{Events: 600_000, Shape: compete}, Target{}, "", false),

		nats("raw bytes: NATS core", false, raw, Params{Events: 500_000}, Target{}, "", false),
		nats("raw bytes: JetStream, batches of 100", true, raw, Params{Events: 60_000, Batch: 100}, Target{}, "", false),
		nats("raw bytes: JetStream, 64 publishers", true, raw, Params{Events: 60_000, Publishers: 64}, Target{}, "", false),
		nats("raw bytes: JetStream, 1 event per Publish", true, raw, Params{Events: 5_000}, Target{}, "", false),
		nats("raw bytes: JetStream, fan-out to 4 groups", true, raw, Params{Events: 30_000, Batch: 100, Shape: fanOut}, Target{}, "", false),
		nats("raw bytes: JetStream, 1 group of 3 members", true, raw, Params{Events: 60_000, Batch: 100, Shape: compete}, Target{}, "", false),
	)
	if re == nil {
		return s
	}
	return append(s,
		streams("raw bytes: Redis Streams, batches of 100", raw, Params{Events: 100_000, Batch: 100}, Target{}, "", false),
		streams("raw bytes: Redis Streams, 64 publishers", raw, Params{Events: 60_000, Publishers: 64}, Target{}, "", false),
		streams("raw bytes: Redis Streams, 1 event per Publish", raw, Params{Events: 6_000}, Target{}, "", false),
		pubsub("raw bytes: Redis Pub/Sub", raw, Params{Events: 6_000}, Target{}, "", false),
		streams("raw bytes: Redis Streams, fan-out to 4 groups", raw, Params{Events: 50_000, Batch: 100, Shape: fanOut}, Target{}, "", false),
		streams("raw bytes: Redis Streams, 1 group of 3 members", raw, Params{Events: 100_000, Batch: 100, Shape: compete}, Target{}, "", false),
	)
}
