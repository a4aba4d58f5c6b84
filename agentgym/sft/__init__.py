"""SFT data: trajectories that met their rubric, exported as training formats (`export`)."""
