"""qoslab.labels: one readable, unambiguous name per flow."""

from __future__ import annotations

import ipaddress
import re

import pandas as pd

import qoslab
from qoslab.labels import flow_labels

LABEL = re.compile(r"^(?P<proto>\S+) (?P<a>\S+) > (?P<b>\S+)")


def _address(endpoint: str) -> str:
    """The address of ``a:port``, ``[v6]:port``, ``a`` or ``v6`` as the label wrote it."""
    if endpoint.startswith("["):
        return endpoint[1:endpoint.index("]")]
    if endpoint.count(":") == 1:
        return endpoint.split(":")[0]
    return endpoint


def test_every_label_of_the_bundled_capture_reads_back_its_inner_addresses_and_ports():
    packets = qoslab.read_capture(qoslab.data_path("captures/tunnel_uploads.pcap"))
    labels = flow_labels(packets)
    assert labels.index.equals(packets.index) and labels.notna().all()
    for label, (_, row) in zip(labels, packets.iterrows(), strict=True):
        m = LABEL.match(label)
        assert m, label
        src, dst = _address(m["a"]), _address(m["b"])
        assert ipaddress.ip_address(src) == ipaddress.ip_address(row["inner_src"]), label
        assert ipaddress.ip_address(dst) == ipaddress.ip_address(row["inner_dst"]), label
        if pd.notna(row["inner_sport"]):
            assert m["a"].rsplit(":", 1)[1] == str(int(row["inner_sport"])), label
            assert m["b"].rsplit(":", 1)[1] == str(int(row["inner_dport"])), label
        assert f" via {row['tunnel']} " in label


def test_ipv6_addresses_are_bracketed_only_where_a_port_follows():
    p = pd.DataFrame({"src": ["2001:db8::1", "2001:db8::1"], "dst": ["2001:db8::2:80", "ff02::1"],
                      "proto": [6, 58], "sport": [40000, None], "dport": [80, None],
                      "tos": [0, 0], "tunnel": ["none", "none"], "icmp_id": [None, 7]})
    assert flow_labels(p).tolist() == ["tcp [2001:db8::1]:40000 > [2001:db8::2:80]:80",
                                       "icmpv6 2001:db8::1 > ff02::1 id=0x0007"]

