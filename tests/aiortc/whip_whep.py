#!/usr/bin/env python3
"""An independent WebRTC client (aiortc) for Sportello's WHIP ingest and WHEP playback.

    whip_whep.py publish <whip_url> <token> <seconds> <media_file>
    whip_whep.py play <whep_url> <seconds>

publish: sends VP8 video + Opus audio from <media_file> (played at its own pace; it must outlast <seconds>) to the
WHIP endpoint with the bearer token, keeps it up for <seconds>, then DELETEs the resource.
play: receive-only video + audio from the WHEP endpoint, decodes for <seconds> from the answer,
then DELETEs the resource.

Each mode prints one JSON line on stdout (what the Rust test asserts) and exits non-zero on any
failure, with the reason on stderr. Used by tests/tests/whip_whep.rs inside a loopback-only
network namespace: ICE gathers 127.0.0.1 only and no STUN server is contacted
(see shared/testing.md §4).
"""

import asyncio
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import aioice.ice

# aioice skips loopback when gathering host candidates; in the namespace loopback is all there is.
aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: ["127.0.0.1"]

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription  # noqa: E402
from aiortc.contrib.media import MediaPlayer  # noqa: E402

HTTP_TIMEOUT = 10
CONNECT_TIMEOUT = 10


def log(*args):
    print("whip_whep:", *args, file=sys.stderr, flush=True)


def http(method, url, body=None, headers=None):
    """A blocking HTTP request (run in a thread); returns (status, headers, body) even on 4xx/5xx."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode(errors="replace")


async def ahttp(*args, **kwargs):
    return await asyncio.to_thread(http, *args, **kwargs)


def only(kind, mime):
    """The codec preferences that leave `mime` alone (no RTX, no other codec): the SFU takes VP8 and Opus."""
    codecs = [c for c in RTCRtpSender.getCapabilities(kind).codecs if c.mimeType.lower() == mime.lower()]
    if not codecs:
        raise SystemExit(f"aiortc offers no {mime}")
    return codecs


def new_pc():
    # No ICE servers at all: aiortc would otherwise ask a public STUN server.
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


async def negotiate(pc, url, headers):
    """Offer (after ICE gathering, which setLocalDescription waits for), POST it, apply the answer;
    returns the resource URL (absolute)."""
    offer = await pc.createOffer()
    await pc.setLocalDescription(offer)
    sdp = pc.localDescription.sdp
    status, resp_headers, body = await ahttp(
        "POST", url, sdp.encode(), {"Content-Type": "application/sdp", **headers}
    )
    if status != 201:
        log(f"POST {url} -> {status}: {body}")
        if status not in (401, 403):  # the SFU refused something in the offer: show it
            log("offer was:\n" + sdp)
        raise SystemExit(3)
    location = next((v for k, v in resp_headers.items() if k.lower() == "location"), None)
    if not location:
        log(f"POST {url}: 201 without Location")
        raise SystemExit(3)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
    return urllib.parse.urljoin(url, location)


async def wait_connected(pc):
    connected = asyncio.Event()
    failed = asyncio.Event()

    @pc.on("connectionstatechange")
    def _():
        if pc.connectionState == "connected":
            connected.set()
        elif pc.connectionState in ("failed", "closed"):
            failed.set()

    if pc.connectionState == "connected":
        return
    done, _ = await asyncio.wait(
        [asyncio.create_task(connected.wait()), asyncio.create_task(failed.wait())],
        timeout=CONNECT_TIMEOUT,
        return_when=asyncio.FIRST_COMPLETED,
    )
    if not connected.is_set():
        log(f"no connection within {CONNECT_TIMEOUT} s (state {pc.connectionState}, ice {pc.iceConnectionState})")
        raise SystemExit(4)


async def publish(url, token, seconds, media_file):
    player = MediaPlayer(media_file)
    if player.video is None or player.audio is None:
        raise SystemExit(f"{media_file} needs a video and an audio stream")
    pc = new_pc()
    video = pc.addTransceiver(player.video, direction="sendonly")
    video.setCodecPreferences(only("video", "video/VP8"))
    audio = pc.addTransceiver(player.audio, direction="sendonly")
    audio.setCodecPreferences(only("audio", "audio/opus"))
    auth = {"Authorization": f"Bearer {token}"}
    started = time.monotonic()
    resource = await negotiate(pc, url, auth)
    await wait_connected(pc)
    log(f"publishing to {resource}")
    await asyncio.sleep(max(0.0, seconds - (time.monotonic() - started)))
    stats = await pc.getStats()
    sent = {
        s.kind: s.packetsSent for s in stats.values() if s.type == "outbound-rtp" and hasattr(s, "kind")
    }
    status, _, body = await ahttp("DELETE", resource, None, auth)
    await pc.close()
    if status != 200:
        log(f"DELETE {resource} -> {status}: {body}")
    print(json.dumps({
        "resource": resource,
        "delete_status": status,
        "video_packets": sent.get("video", 0),
        "audio_packets": sent.get("audio", 0),
        "seconds": round(time.monotonic() - started, 2),
    }), flush=True)


async def play(url, seconds):
    pc = new_pc()
    video = pc.addTransceiver("video", direction="recvonly")
    video.setCodecPreferences(only("video", "video/VP8"))
    audio = pc.addTransceiver("audio", direction="recvonly")
    audio.setCodecPreferences(only("audio", "audio/opus"))
    counts = {"video_frames": 0, "audio_frames": 0, "width": 0, "height": 0}
    readers = []

    async def read(track):
        while True:
            try:
                frame = await track.recv()
            except Exception:  # MediaStreamError when the track ends
                return
            if track.kind == "video":
                counts["video_frames"] += 1
                counts["width"], counts["height"] = frame.width, frame.height
            else:
                counts["audio_frames"] += 1

    @pc.on("track")
    def _(track):
        readers.append(asyncio.ensure_future(read(track)))

    resource = await negotiate(pc, url, {})
    await wait_connected(pc)
    await asyncio.sleep(seconds)
    status, _, body = await ahttp("DELETE", resource, None, {})
    if status != 200:
        log(f"DELETE {resource} -> {status}: {body}")
    for r in readers:
        r.cancel()
    await pc.close()
    print(json.dumps({**counts, "resource": resource, "delete_status": status}), flush=True)


def main(argv):
    if len(argv) == 6 and argv[1] == "publish":
        asyncio.run(publish(argv[2], argv[3], float(argv[4]), argv[5]))
    elif len(argv) == 4 and argv[1] == "play":
        asyncio.run(play(argv[2], float(argv[3])))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
