package main

// buildScenarios lists the rows of the table: the transports, then
// fan-out, competing consumers and concurrent publishers. Event counts are
// for the full run; -quick scales them down.
func buildScenarios(ne *natsEnv, re *redisEnv, _ config) []*Scenario {
	one := Shape{}
	fanOut := Shape{Groups: 4}
	compete := Shape{Members: 3}

	memory := func(name string, p Params, t Target, chart string, lat bool) *Scenario {
		return &Scenario{
			Name: name, Transport: chart, Params: p, Target: t, Latency: lat,
			Impls: [nImpl]Impl{
				{Label: "Go channel", Open: rawChannel},
				{Label: "gossip memory", Open: gossipMemory},
				{Label: "GoChannel", Open: watermillGoChannel, Note: "GoChannel has no consumer groups"},
			},
		}
	}
	natsImpls := func(js bool) [nImpl]Impl {
		if js {
			return [nImpl]Impl{
				{Label: "nats.go JetStream", Open: ne.rawJetStream},
				{Label: "gossip nats", Open: ne.gossip("jetstream")},
				{Label: "watermill-nats JetStream", Open: ne.watermill(true)},
			}
		}
		return [nImpl]Impl{
			{Label: "nats.go core", Open: ne.rawCore},
			{Label: "gossip nats core", Open: ne.gossip("core")},
			{Label: "watermill-nats core", Open: ne.watermill(false)},
		}
	}
	nats := func(name string, js bool, p Params, t Target, chart string, lat bool) *Scenario {
		return &Scenario{Name: name, Transport: chart, Params: p, Target: t, Latency: lat,
			Impls: natsImpls(js), Cleanup: ne.cleanup}
	}

	s := []*Scenario{
		memory("in-process, 1 publisher", Params{Events: 600_000}, Target{MinRate: 1.5e6}, "in-process", true),
		memory("in-process, 4 publishers", Params{Events: 600_000, Publishers: 4}, Target{}, "", false),
		memory("in-process, 64 publishers", Params{Events: 600_000, Publishers: 64}, Target{}, "", false),
		memory("in-process, fan-out to 4 groups", Params{Events: 200_000, Shape: fanOut}, Target{}, "", false),
		memory("in-process, 1 group of 3 members", Params{Events: 600_000, Shape: compete}, Target{}, "", false),

		nats("NATS core", false, Params{Events: 500_000}, Target{MinRatio: 0.8, NoLoss: true}, "NATS core", true),
		nats("NATS JetStream, batches of 100", true, Params{Events: 60_000, Batch: 100}, Target{MinRatio: 0.8}, "JetStream batch", false),
		nats("NATS JetStream, 64 publishers", true, Params{Events: 60_000, Publishers: 64}, Target{MinRatio: 0.8}, "JetStream 64 pub", false),
		nats("NATS JetStream, one per call", true, Params{Events: 5_000}, Target{MinRatio: 0.9}, "JetStream sync", true),
		nats("NATS JetStream, fan-out to 4 groups", true, Params{Events: 30_000, Batch: 100, Shape: fanOut}, Target{}, "", false),
		nats("NATS JetStream, 1 group of 3 members", true, Params{Events: 60_000, Batch: 100, Shape: compete}, Target{}, "", false),
	}
	if re == nil {
		return s
	}
	streamImpls := [nImpl]Impl{
		{Label: "go-redis XADD/XREADGROUP", Open: re.rawStreams},
		{Label: "gossip redis", Open: re.gossip("streams")},
		{Label: "watermill-redisstream", Open: re.watermill},
	}
	redisStreams := func(name string, p Params, t Target, chart string, lat bool) *Scenario {
		return &Scenario{Name: name, Transport: chart, Params: p, Target: t, Latency: lat,
			Impls: streamImpls, Cleanup: re.cleanup, ExtCPU: re.srv.CPU}
	}
	s = append(s,
		redisStreams("Redis Streams, batches of 100", Params{Events: 100_000, Batch: 100}, Target{MinRatio: 0.8}, "Redis Streams batch", false),
		redisStreams("Redis Streams, 64 publishers", Params{Events: 60_000, Publishers: 64}, Target{MinRatio: 0.8}, "Redis Streams 64 pub", false),
		redisStreams("Redis Streams, one per call", Params{Events: 6_000}, Target{MinRatio: 0.9}, "Redis Streams single", true),
		&Scenario{Name: "Redis Pub/Sub", Transport: "Redis Pub/Sub", Params: Params{Events: 6_000},
			Target: Target{MinRatio: 0.9}, Latency: true, Cleanup: re.cleanup, ExtCPU: re.srv.CPU,
			Impls: [nImpl]Impl{
				{Label: "go-redis PUBLISH/SUBSCRIBE", Open: re.rawPubSub},
				{Label: "gossip redis pubsub", Open: re.gossip("pubsub")},
				{Label: "—", Note: "watermill-redisstream has no Pub/Sub"},
			}},
		redisStreams("Redis Streams, fan-out to 4 groups", Params{Events: 50_000, Batch: 100, Shape: fanOut}, Target{}, "", false),
		redisStreams("Redis Streams, 1 group of 3 members", Params{Events: 100_000, Batch: 100, Shape: compete}, Target{}, "", false),
	)
	_ = one
	return s
}
