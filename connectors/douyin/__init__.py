"""抖店 (Douyin shop): message pushes, repaired by a periodic ``order.searchList`` reconciliation pull."""
