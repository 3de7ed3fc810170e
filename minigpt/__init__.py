"""minigpt"""
