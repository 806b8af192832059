use super::*;
use std::os::unix::fs::FileExt;

fn payloads(j: &Journal) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    j.replay(0, &mut |seq, _, p| {
        out.push((seq, p.to_vec()));
        Ok(())
    })
    .unwrap();
    out
}

fn filled(dir: &Path, n: u64) -> Journal {
    let (mut j, _) = Journal::open(dir, 1).unwrap();
    for i in 0..n {
        j.append(format!("record {i} {}", "x".repeat(i as usize)).as_bytes())
            .unwrap();
    }
    j
}

#[test]
fn records_come_back_in_order_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    drop(filled(dir.path(), 5));
    let (j, scan) = Journal::open(dir.path(), 1).unwrap();
    assert_eq!(scan.records, 5);
    assert_eq!(scan.last_seq, 5);
    assert_eq!(scan.torn_tail, 0);
    assert!(scan.damage.is_empty());
    let got = payloads(&j);
    assert_eq!(got.len(), 5);
    assert_eq!(got[2], (3, b"record 2 xx".to_vec()));
    assert_eq!(j.next_seq(), 6);
}

#[test]
fn a_new_journal_starts_at_the_given_sequence_number() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), 700).unwrap();
    assert_eq!(j.append(b"a").unwrap().0, 700);
}

#[test]
fn a_torn_last_record_is_cut_at_the_last_whole_one() {
    let dir = tempfile::tempdir().unwrap();
    let j = filled(dir.path(), 4);
    let whole = j.end();
    drop(j);
    // Half a record more, as a power cut in the middle of a write leaves it:
    // in the room made ahead of the records, zeros after it.
    let mut torn = frame(5, b"a record that never finished");
    torn.truncate(torn.len() - 7);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join(FILE))
        .unwrap();
    f.write_all_at(&torn, whole).unwrap();
    drop(f);
    let (mut j, scan) = Journal::open(dir.path(), 1).unwrap();
    assert_eq!((scan.records, scan.torn_tail), (4, torn.len() as u64));
    assert_eq!(std::fs::metadata(j.path()).unwrap().len(), whole);
    assert_eq!(j.append(b"next").unwrap().0, 5, "numbering goes on");
    drop(j);
    let (_, scan) = Journal::open(dir.path(), 1).unwrap();
    assert_eq!((scan.records, scan.torn_tail), (5, 0));
}

#[test]
fn the_file_grows_ahead_of_the_records_so_a_sync_does_not_change_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), 1).unwrap();
    let len = || std::fs::metadata(dir.path().join(FILE)).unwrap().len();
    j.append(b"first").unwrap();
    assert_eq!(len(), PREALLOCATE, "room made once");
    for i in 0..1000 {
        j.append(format!("record {i}").as_bytes()).unwrap();
    }
    assert_eq!(
        len(),
        PREALLOCATE,
        "the records fill the room, the size stays"
    );
    // A record larger than what is left grows the file in whole steps.
    let big = vec![7u8; (PREALLOCATE + 10) as usize];
    j.append(&big).unwrap();
    assert_eq!(len(), 2 * PREALLOCATE);
    let end = j.end();
    drop(j);
    // The zeros are room, not a torn record: nothing to report, all records there.
    let (j, scan) = Journal::open(dir.path(), 1).unwrap();
    assert_eq!((scan.records, scan.torn_tail), (1002, 0));
    assert!(scan.damage.is_empty());
    assert_eq!(j.end(), end);
    assert_eq!(payloads(&j).last().unwrap().1, big);
}

#[test]
fn damage_in_the_middle_is_reported_and_the_records_after_it_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let j = filled(dir.path(), 6);
    let second_end = {
        let mut ends = Vec::new();
        j.replay(0, &mut |_, end, _| {
            ends.push(end);
            Ok(())
        })
        .unwrap();
        ends[1]
    };
    drop(j);
    // Flip bytes inside record 3 (as a bad sector would).
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join(FILE))
        .unwrap();
    f.write_all_at(b"\xff\xff\xff", second_end + 22).unwrap();
    drop(f);
    let (mut j, scan) = Journal::open(dir.path(), 1).unwrap();
    assert_eq!(scan.records, 5);
    assert_eq!(scan.torn_tail, 0);
    assert_eq!(scan.damage.len(), 1);
    let d = &scan.damage[0];
    assert_eq!((d.offset, d.after_seq, d.before_seq), (second_end, 2, 4));
    let seqs: Vec<u64> = payloads(&j).iter().map(|p| p.0).collect();
    assert_eq!(seqs, [1, 2, 4, 5, 6]);

    let keep = dir.path().join("journal.damaged");
    let rewritten = j.rewrite_without_damage(&keep).unwrap();
    assert!(rewritten.damage.is_empty());
    assert!(keep.exists(), "the damaged file is kept");
    drop(j);
    let (j, scan) = Journal::open(dir.path(), 1).unwrap();
    assert!(scan.damage.is_empty());
    assert_eq!(
        payloads(&j).iter().map(|p| p.0).collect::<Vec<_>>(),
        [1, 2, 4, 5, 6]
    );
    assert_eq!(j.next_seq(), 7);
}

#[test]
fn a_garbage_file_yields_no_records_and_no_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut junk: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    junk.extend_from_slice(&MAGIC);
    junk.extend_from_slice(&[0xff; 30]);
    std::fs::write(dir.path().join(FILE), &junk).unwrap();
    let (j, scan) = Journal::open(dir.path(), 1).unwrap();
    assert_eq!(scan.records, 0);
    assert_eq!(scan.torn_tail, junk.len() as u64);
    assert_eq!(j.end(), 0);
}

#[test]
fn a_second_process_cannot_open_a_journal_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let _first = filled(dir.path(), 1);
    // flock is per open file: a second open in this process conflicts like another process.
    match Journal::open(dir.path(), 1) {
        Err(JournalError::Locked { .. }) => {}
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("opened twice"),
    }
}

#[test]
fn sync_covers_everything_appended_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = filled(dir.path(), 3);
    assert!(!j.is_synced());
    let (file, upto) = j.sync_target().unwrap().unwrap();
    sync_file(&file).unwrap();
    j.mark_synced(upto);
    assert!(j.is_synced());
    assert!(j.sync_target().unwrap().is_none());
}
