#!/usr/bin/env python3
"""A relay-only WebRTC publisher (aiortc): reaches the SFU through a TURN server or not at all.

    turn_relay.py <ice_servers_json> <seconds>

<ice_servers_json> is the `ice_servers` of a `welcome` (RTCIceServer list). The signaling is the
caller's (tests/tests/turn_relay.rs speaks the websocket): this script prints one JSON line
{"offer", "mid", "relay_candidates"} once ICE gathering is done, reads one JSON line {"answer"} on
stdin, sends VP8 video for <seconds> and prints {"state", "local_candidate"}: the connection state
reached and the type of the local candidate ICE selected ("relay" through TURN).
"""

import asyncio
import json
import sys

import aioice.ice

# aioice skips loopback when gathering host candidates; in the namespace loopback is all there is
# (the host socket is only used to talk to the TURN server: the policy is relay).
aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: ["127.0.0.1"]

from aiortc import (  # noqa: E402
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
    VideoStreamTrack,
)


def log(*args):
    print("turn_relay:", *args, file=sys.stderr, flush=True)


def selected_local_candidate(pc):
    """The type of the nominated pair's local candidate (aioice keeps it; aiortc's stats do not say)."""
    for transceiver in pc.getTransceivers():
        connection = transceiver.sender.transport.transport._connection
        for pair in connection._nominated.values():
            return pair.local_candidate.type
    return None


async def main(ice_servers, seconds):
    servers = [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in ice_servers
    ]
    pc = RTCPeerConnection(RTCConfiguration(iceServers=servers, iceTransportPolicy=RTCIceTransportPolicy.RELAY))
    transceiver = pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
    vp8 = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType.lower() == "video/vp8"]
    transceiver.setCodecPreferences(vp8)
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    relay = sum(1 for line in sdp.splitlines() if line.startswith("a=candidate") and " typ relay" in line)
    print(json.dumps({"offer": sdp, "mid": transceiver.mid, "relay_candidates": relay}), flush=True)

    line = await asyncio.to_thread(sys.stdin.readline)
    if not line:
        raise SystemExit("no answer on stdin")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=json.loads(line)["answer"], type="answer"))
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end and pc.connectionState != "failed":
        await asyncio.sleep(0.2)
    state = pc.connectionState
    local = selected_local_candidate(pc) if state == "connected" else None
    print(json.dumps({"state": state, "local_candidate": local}), flush=True)
    await pc.close()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    asyncio.run(main(json.loads(sys.argv[1]), float(sys.argv[2])))
