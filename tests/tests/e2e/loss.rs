//! Scenario `call_under_loss`: a two-party call while 5 % of the UDP datagrams are lost in each
//! direction (nftables in the test's namespace, from before the first page opens, so ICE, DTLS,
//! the subscribe negotiations, keyframe requests and the keyframes themselves all cross the lossy
//! path). Each participant must decode the other's camera, keep decoding it, and hear the other's
//! microphone (issue 11, item 10: in 2 of 16 such calls one side never received the other's video);
//! each camera must have been NACKed by the SFU and have sent packets again (its RTX, which the SFU
//! restores itself: `sfu/src/transport/engine/ingress.rs`).

use sportello_tests::browser::{Result, err};
use sportello_tests::netns::UdpLoss;

use super::{Ctx, MEDIA_TIMEOUT, app, join, media_condition, wait_camera_progress, wait_uplink};

const ROOM: &str = "sportello-perdite";
const LOSS_PERCENT: u8 = 5;

pub async fn call_under_loss(ctx: &mut Ctx) -> Result<()> {
    let loss = UdpLoss::install(LOSS_PERCENT).map_err(|e| err(e.to_string()))?;
    let server = app::App::start().await?;
    let urls =
        [("anna", server.join_url(ROOM, "anna", "host")), ("bruno", server.join_url(ROOM, "bruno", "participant"))];
    ctx.server = Some(server);
    for (id, url) in &urls {
        ctx.open(id, url).await?;
    }
    let [anna, bruno] = [&ctx.browsers[0], &ctx.browsers[1]];
    tokio::try_join!(join(anna), join(bruno))?;
    let (anna_sees, bruno_sees) = (
        media_condition(&["bruno/camera"], &["bruno/microphone"]),
        media_condition(&["anna/camera"], &["anna/microphone"]),
    );
    tokio::try_join!(anna.wait_for(&anna_sees, MEDIA_TIMEOUT), bruno.wait_for(&bruno_sees, MEDIA_TIMEOUT))?;
    // Not one lucky keyframe: the picture keeps moving on both sides (≈ 3 s of video).
    tokio::try_join!(
        wait_camera_progress(anna, "bruno", 60, MEDIA_TIMEOUT),
        wait_camera_progress(bruno, "anna", 60, MEDIA_TIMEOUT),
    )?;
    let dropped = loss.dropped().map_err(|e| err(e.to_string()))?;
    if dropped == 0 {
        return Err(err("the loss rule dropped nothing: the call did not cross the lossy path"));
    }
    // What each camera lost on the way in, the SFU asked for, and Chromium sent again (as RTX,
    // which the SFU restores to the camera's stream itself).
    for b in [anna, bruno] {
        let (ok, u) = wait_uplink(b, MEDIA_TIMEOUT, |u| u.nacks > 0 && u.retransmitted > 0).await?;
        if !ok {
            return Err(err(format!("[{}] no NACK from the SFU answered on the way in: {u:?}", b.label())));
        }
        println!("  [{}] {} NACKs from the SFU, {} packets sent again", b.label(), u.nacks, u.retransmitted);
    }
    println!(
        "  both decode each other's camera and hear each other with {LOSS_PERCENT} % UDP loss ({dropped} datagrams dropped)"
    );
    Ok(())
}
