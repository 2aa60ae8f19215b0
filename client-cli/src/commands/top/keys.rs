//! The keyboard, read beside the async loop: only quitting is bound.

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Key {
    Quit,
    Other,
}

/// Reads keys on a thread of its own (crossterm's reader blocks).
pub(super) fn key_reader() -> tokio::sync::mpsc::Receiver<Key> {
    use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
    let (sender, receiver) = tokio::sync::mpsc::channel(16);
    std::thread::Builder::new()
        .name("pharos-top-keys".to_owned())
        .spawn(move || {
            while let Ok(event) = event::read() {
                let key = match event {
                    Event::Key(key) if key.kind == KeyEventKind::Press => match key.code {
                        KeyCode::Char('q') | KeyCode::Esc => Key::Quit,
                        KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                            Key::Quit
                        }
                        _ => Key::Other,
                    },
                    _ => continue,
                };
                if sender.blocking_send(key).is_err() {
                    break;
                }
            }
        })
        .expect("spawn the key reader");
    receiver
}
