//! The public side of one council room, driven by the room actor after every council change:
//! opens the SFU program feed (`live-<session>`), tells it which sources to show, keeps the
//! [`LiveBoard`] current for `/live/<session>`, and records the program from the moment a chair
//! is present until the session ends or the room empties. The recording's files are finished
//! (remux, hash, archive row) by the persistence task, never in the room: a stopped recording is
//! handed back as a [`Finished`] for the room to queue.

use std::path::PathBuf;

use sportello_sfu::{ProgramSelection, RoomId, Sfu, SourceRef, TrackSource};

use crate::council::{CouncilRoom, OnAir};
use crate::live::{AUDIO_SLOTS, CHAMBER_PARTICIPANT, LiveBoard, LiveState, LiveStatus, chamber_room, program_room};
use crate::recording::{self, Finished, PreparedRecording};

struct Active {
    prepared: PreparedRecording,
    started_at: i64,
}

pub struct Broadcast {
    session: String,
    council: RoomId,
    chamber: RoomId,
    program: RoomId,
    open: bool,
    selection: ProgramSelection,
    published: Option<LiveState>,
    recording: Option<Active>,
    /// The previous owner's unfinished recordings were looked for.
    adopted: bool,
    board: LiveBoard,
    data_dir: PathBuf,
}

impl Broadcast {
    pub fn new(council: RoomId, session: &str, board: LiveBoard, data_dir: PathBuf) -> Self {
        Broadcast {
            session: session.to_owned(),
            council,
            chamber: chamber_room(session).into(),
            program: program_room(session).into(),
            open: false,
            selection: ProgramSelection::default(),
            published: None,
            recording: None,
            adopted: false,
            board,
            data_dir,
        }
    }

    /// Brings the program, the board and the recording in line with the council room. Returns
    /// the recordings for the persistence task to archive: the one the session's end stopped, or
    /// — when the recording starts here — unfinished ones of the session's previous owner.
    pub async fn sync(&mut self, sfu: &Sfu, council: &CouncilRoom, now: i64) -> Vec<Finished> {
        let Some(on_air) = council.on_air() else { return Vec::new() };
        if on_air.status == LiveStatus::Ended {
            let finished = self.stop(sfu, council, now).await;
            self.publish(&on_air, now);
            return finished.into_iter().collect();
        }
        if !self.open {
            match sfu.program_open(self.program.clone(), AUDIO_SLOTS).await {
                Ok(()) | Err(sportello_sfu::SfuError::ProgramExists(_)) => self.open = true,
                Err(error) => {
                    tracing::error!(%error, "program feed not opened: the session is not streamed");
                    return Vec::new();
                }
            }
        }
        let selection = self.selection_for(&on_air);
        if selection != self.selection {
            if let Err(error) = sfu.program_select(self.program.clone(), selection.clone()).await {
                tracing::warn!(%error, "program selection not applied");
            }
            self.selection = selection;
        }
        let mut adopted = Vec::new();
        if self.recording.is_none() {
            adopted = self.adopt_orphans(council).await;
            self.start_recording(sfu, now).await;
        }
        self.publish(&on_air, now);
        adopted
    }

    /// Once, before this room's first recording: the session's recordings that the node which ran
    /// it before never finished (it died), each to be archived as a segment of its own.
    async fn adopt_orphans(&mut self, council: &CouncilRoom) -> Vec<Finished> {
        if std::mem::replace(&mut self.adopted, true) {
            return Vec::new();
        }
        let (data_dir, session) = (self.data_dir.clone(), self.session.clone());
        let orphans = tokio::task::spawn_blocking(move || recording::adopt_orphans(&data_dir, &session, None))
            .await
            .unwrap_or_default();
        orphans
            .into_iter()
            .map(|o| Finished {
                data_dir: self.data_dir.clone(),
                session: self.session.clone(),
                chapters: council.chapters(o.started_at, o.ended_at),
                prepared: o.prepared,
                started_at: o.started_at,
                ended_at: o.ended_at,
                files: o.files,
            })
            .collect()
    }

    /// The room is closing (everyone left) or the session ended: finish the recording, close the
    /// program. The board keeps "live" only while the room exists. Returns the stopped recording,
    /// for the persistence task to archive.
    pub async fn stop(&mut self, sfu: &Sfu, council: &CouncilRoom, now: i64) -> Option<Finished> {
        let mut finished = None;
        if let Some(active) = self.recording.take() {
            // Before the program closes (closing drops its recorder). Closing the files takes
            // milliseconds on the recorder's thread; the remux runs in the persistence task.
            match sfu.record_stop(self.program.clone()).await {
                Ok(files) => {
                    let (prepared, files) = recording::closed(active.prepared, files);
                    finished = Some(Finished {
                        data_dir: self.data_dir.clone(),
                        session: self.session.clone(),
                        chapters: council.chapters(active.started_at, now),
                        prepared,
                        started_at: active.started_at,
                        ended_at: now,
                        files,
                    });
                }
                Err(error) => tracing::error!(
                    %error,
                    "recording not finished; raw files stay in {}",
                    active.prepared.raw_dir.display()
                ),
            }
        }
        if self.open {
            if let Err(error) = sfu.program_close(self.program.clone()).await {
                tracing::debug!(%error, "program close");
            }
            self.open = false;
            self.selection = ProgramSelection::default();
        }
        if council.on_air().is_none_or(|a| a.status != LiveStatus::Ended) {
            // Nobody left in the room: not on air any more (the stored status says the rest).
            self.board.remove(&self.session);
            self.published = None;
        }
        finished
    }

    async fn start_recording(&mut self, sfu: &Sfu, now: i64) {
        let prepared = match recording::prepare(&self.data_dir, &self.session) {
            Ok(p) => p,
            Err(error) => {
                tracing::error!(%error, "the session is not recorded");
                return;
            }
        };
        match sfu.record_start(self.program.clone(), prepared.raw_dir.clone()).await {
            Ok(()) => {
                tracing::info!(recording = %prepared.id, "session recording started");
                self.recording = Some(Active { prepared, started_at: now });
            }
            Err(error) => tracing::error!(%error, "the session is not recorded"),
        }
    }

    /// Who is shown and heard: the floor holder, else the chamber's camera, else the chair; the
    /// voice slot follows the floor, the second slot carries the chair while someone else speaks.
    /// Suspended: nothing at all (the slate), so nothing reaches viewers or the recording.
    fn selection_for(&self, on_air: &OnAir) -> ProgramSelection {
        if on_air.status != LiveStatus::Live {
            return ProgramSelection::default();
        }
        let council =
            |p: &sportello_sfu::ParticipantId, source| SourceRef::new(self.council.clone(), p.clone(), source);
        let chamber = |source| SourceRef::new(self.chamber.clone(), CHAMBER_PARTICIPANT, source);
        let mut video: Vec<SourceRef> = on_air.floor.iter().map(|p| council(p, TrackSource::Camera)).collect();
        video.push(chamber(TrackSource::Camera));
        video.extend(on_air.chairs.iter().map(|p| council(p, TrackSource::Camera)));
        let mut voice: Vec<SourceRef> = on_air.floor.iter().map(|p| council(p, TrackSource::Microphone)).collect();
        voice.extend(on_air.chairs.iter().map(|p| council(p, TrackSource::Microphone)));
        voice.push(chamber(TrackSource::Microphone));
        let chair = if on_air.floor.is_some() {
            on_air.chairs.iter().map(|p| council(p, TrackSource::Microphone)).collect()
        } else {
            Vec::new()
        };
        ProgramSelection { video, audio: vec![voice, chair] }
    }

    fn publish(&mut self, on_air: &OnAir, now: i64) {
        let mut state =
            LiveState { status: on_air.status, item: on_air.item.clone(), speaker: on_air.speaker.clone(), since: now };
        if let Some(old) = &self.published {
            if (&old.status, &old.item, &old.speaker) == (&state.status, &state.item, &state.speaker) {
                return;
            }
            if old.status == state.status {
                state.since = old.since;
            }
        }
        self.board.set(&self.session, state.clone());
        self.published = Some(state);
    }
}
