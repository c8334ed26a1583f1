"""Tic-tac-toe for `scalesocket --json`: one game per room, Python 3 standard library only.

Run as `scalesocket --json python3 -- -u game.py` (`-u`: print() reaches the room at once, not when a
buffer fills). Every line on stdin is a JSON object stamped by the server with "_from", the sender's ID;
every line printed is JSON for the room:

- the first two people in a room play (X, then O), later ones watch and take a seat when one frees up;
- {"t": "You", ...} with "_to" tells one person their mark, privately; so do errors ("not your turn");
- {"t": "State", ...} goes to everyone after each change;
- {"_meta": true, ...} is not delivered: it becomes the room's metadata, which the lobby reads from
  /api/rooms (--api) to list the games that wait for a player.
"""

import json
import sys

LINES = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]


class Game:
    def __init__(self):
        self.seats = {"X": None, "O": None}
        self.watchers = []  # IDs in the order they came, the next to get a free seat first
        self.reset()

    def reset(self):
        self.board = [""] * 9
        self.turn = "X"
        self.winner = None  # "X", "O" or "draw"

    def mark_of(self, client):
        return next((mark for mark, who in self.seats.items() if who == client), None)

    def status(self):
        if None in self.seats.values():
            return "waiting for a second player"
        if self.winner == "draw":
            return "a draw"
        if self.winner:
            return f"{self.winner} wins"
        return f"{self.turn} to play"

    def seat(self, client):
        for mark in ("X", "O"):
            if self.seats[mark] is None:
                self.seats[mark] = client
                return mark
        self.watchers.append(client)
        return None

    def play(self, client, cell):
        """Plays a move; returns an error for the player, or None."""
        mark = self.mark_of(client)
        if mark is None:
            return "you are watching this game"
        if None in self.seats.values():
            return "wait for a second player"
        if self.winner:
            return "the game is over: press Play again"
        if mark != self.turn:
            return "not your turn"
        if not isinstance(cell, int) or not 0 <= cell < 9 or self.board[cell]:
            return "that cell is taken"
        self.board[cell] = mark
        if any(all(self.board[i] == mark for i in line) for line in LINES):
            self.winner = mark
        elif all(self.board):
            self.winner = "draw"
        else:
            self.turn = "O" if mark == "X" else "X"
        return None


def send(message):
    print(json.dumps(message))


def tell(client, message):
    send({**message, "_to": client})


def announce(game):
    send({
        "t": "State",
        "board": game.board,
        "turn": game.turn,
        "winner": game.winner,
        "players": game.seats,
        "watching": len(game.watchers),
        "status": game.status(),
    })
    players = sum(who is not None for who in game.seats.values())
    send({"_meta": True, "players": players, "open": players < 2, "status": game.status()})


def main():
    game = Game()
    for line in sys.stdin:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        client, kind = msg.get("_from"), msg.get("t")
        if kind == "Join":
            tell(client, {"t": "You", "id": client, "mark": game.seat(client)})
        elif kind == "Leave":
            mark = game.mark_of(client)
            if client in game.watchers:
                game.watchers.remove(client)
            if mark is not None:
                # A game cannot go on without its player: the board is cleared and the seat goes to whoever
                # has watched longest, or waits for the next person.
                game.seats[mark] = None
                game.reset()
                if game.watchers:
                    heir = game.watchers.pop(0)
                    game.seats[mark] = heir
                    tell(heir, {"t": "You", "id": heir, "mark": mark})
        elif kind == "Move":
            error = game.play(client, msg.get("cell"))
            if error:
                tell(client, {"t": "Error", "text": error})
                continue
        elif kind == "Restart":
            if game.mark_of(client) is None or not game.winner:
                continue
            game.reset()
        else:
            continue
        announce(game)


if __name__ == "__main__":
    main()
