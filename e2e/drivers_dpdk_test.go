//go:build dpdk

package e2e

func init() { drivers["dpdk"] = true }
