module github.com/gossipbus/gossip

go 1.26.8
