"""`dsagent chat`: the line readers (prompt_toolkit, or plain stdin) and Tab completion.
This is the only module that imports prompt_toolkit."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from rich.console import Console

if TYPE_CHECKING:
    from dsagent.chat import Chat


class PromptReader:
    """prompt_toolkit input: history file, multi-line editing, completion, a bottom toolbar."""

    def __init__(self, history_path: Path | None, completer, toolbar: Callable[[], str] | None, plain: bool,
                 input=None, output=None):
        from prompt_toolkit import PromptSession
        from prompt_toolkit.filters import Condition
        from prompt_toolkit.history import FileHistory, InMemoryHistory
        from prompt_toolkit.key_binding import KeyBindings
        from prompt_toolkit.output.color_depth import ColorDepth

        kb = KeyBindings()

        @kb.add("enter", eager=True)
        def _send(event) -> None:
            buf = event.current_buffer
            if buf.complete_state and buf.complete_state.current_completion is not None:
                buf.complete_state = None  # Enter in the menu picks the completion; the next Enter sends
                return
            buf.validate_and_handle()

        @kb.add("escape", "enter")
        def _newline(event) -> None:
            event.current_buffer.insert_text("\n")

        history = None
        if history_path is not None:
            try:
                history_path.parent.mkdir(parents=True, exist_ok=True)
                history_path.touch(exist_ok=True)
                history = FileHistory(str(history_path))
            except OSError:
                history = None
        self.history_path = history_path if history is not None else None
        depth = ColorDepth.DEPTH_1_BIT if plain else None
        self.session = PromptSession(
            history=history or InMemoryHistory(), multiline=True, key_bindings=kb, completer=completer,
            complete_while_typing=Condition(lambda: self.session.default_buffer.text.startswith("/")),
            bottom_toolbar=toolbar if (toolbar and not plain) else None, prompt_continuation=lambda w, n, s: "… ".rjust(w),
            input=input, output=output, color_depth=depth, enable_suspend=True)
        self.questions = PromptSession(history=InMemoryHistory(), input=input, output=output, color_depth=depth,
                                       complete_while_typing=True)

    def read(self, message: str) -> str:
        return self.session.prompt(message)

    def ask(self, message: str, options: list[str]) -> str:
        from prompt_toolkit.completion import WordCompleter

        completer = WordCompleter(options, ignore_case=True, sentence=True) if options else None
        return self.questions.prompt(message, completer=completer)


class StdinReader:
    """Plain lines from stdin (a pipe or a file): no editing, no prompt_toolkit."""

    def __init__(self, console: Console, stream=None):
        self.console = console
        self.stream = stream or sys.stdin
        self.echo = not (hasattr(self.stream, "isatty") and self.stream.isatty())
        self.history_path = None

    def _line(self, message: str) -> str:
        self.console.file.write(message)
        self.console.file.flush()
        line = self.stream.readline()
        if not line:
            self.console.file.write("\n")
            raise EOFError
        line = line.rstrip("\r\n")
        if self.echo:  # piped input is not echoed by a terminal: keep the log readable
            self.console.file.write(line + "\n")
            self.console.file.flush()
        return line

    def read(self, message: str) -> str:
        return self._line(message)

    def ask(self, message: str, options: list[str]) -> str:
        return self._line(message)


def make_completer(chat: "Chat"):
    from prompt_toolkit.completion import Completer, Completion, PathCompleter
    from prompt_toolkit.document import Document

    path_completer = PathCompleter(expanduser=True)

    class ChatCompleter(Completer):
        def get_completions(self, document, complete_event):
            text = document.text_before_cursor
            if text.startswith("/") and " " not in text:
                for name, (_, desc) in chat.COMMANDS.items():
                    if name.startswith(text[1:].lower()):
                        yield Completion("/" + name, start_position=-len(text), display_meta=desc)
                return
            m = re.match(r"/(\w+)\s+(.*)$", text, re.S)
            if m:
                cmd, arg = m.group(1), m.group(2)
                if cmd == "data":
                    sub = Document(arg, cursor_position=len(arg))
                    yield from path_completer.get_completions(sub, complete_event)
                    return
                choices = {"show": chat.show_names, "persona": chat.persona_names}.get(cmd)
                if choices:
                    for name in choices():
                        if name.startswith(arg):
                            yield Completion(name, start_position=-len(arg))
                    return
            word = re.search(r"[\w.\-]*$", text).group(0)  # type: ignore[union-attr]
            if not word:
                return
            low = word.lower()
            cols = chat.columns or []
            ranked = [c for c in cols if c.lower().startswith(low)] + [c for c in cols if low in c.lower() and not c.lower().startswith(low)]
            for col in ranked:
                yield Completion(col, start_position=-len(word), display_meta="column")

    return ChatCompleter()


def styled_prompt():
    """The chat's prompt, in colour (prompt_toolkit's formatted text)."""
    from prompt_toolkit.formatted_text import FormattedText

    return FormattedText([("ansibrightcyan bold", "you › ")])
